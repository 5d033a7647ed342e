// Linked into every engine, C API and GPU test program: turns on the built-in
// plugin's strict TCPX emulation (src/net/tcp/README.md) for the program and,
// through the inherited environment, for every peer process it starts. One
// init per process, a dead peer's requests that never finish, no reuse of a
// listen comm or connect handle: an engine that passes these tests survives
// Google's plugin on those points. TCPX_P2P_TCP_STRICT=0 in the environment
// turns it off for a run by hand.
//
// Set in code rather than through ctest's ENVIRONMENT property because
// gtest_discover_tests keeps only the first entry of a list there.
#include <cstdlib>

namespace {

const bool kStrictTcpxEmulation = [] {
  setenv("TCPX_P2P_TCP_STRICT", "1", /*overwrite=*/0);
  return true;
}();

}  // namespace
