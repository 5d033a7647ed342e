// Helpers shared by the engine tests and their peer process: the mixed
// workload's sizes, plugin modes, a loopback endpoint factory, and
// start_engine_peer (engine_peer as a tests/support ChildProcess talking to
// the test over stdin/stdout lines). The pattern, hex and launcher themselves
// are tests/support's.
#ifndef TCPX_TESTS_ENGINE_TEST_UTIL_H_
#define TCPX_TESTS_ENGINE_TEST_UTIL_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/hex.h"
#include "support/pattern.h"
#include "tcpx/endpoint.h"

namespace tcpx::test {

// Milliseconds since t (steady clock): for "fails within N ms" checks.
inline long ms_since(std::chrono::steady_clock::time_point t) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count());
}

// Size of transfer i of the mixed workload: mostly small, some medium, a few
// multi-chunk ones, zero included.
size_t mixed_size(uint64_t seed, size_t i);

// Which plugin carries the data, and how receives land:
//   kDirect    the built-in plugin, host receives straight into the buffer;
//   kBounce    the built-in plugin with TCPX_P2P_TCP_BOUNCE_HOST=1: every
//              receive through the bounce buffer + CPU unpack, as on TCPX;
//   kHostOnly  tests/plugins/host_only: a plugin shaped like aws-ofi-nccl
//              (device type HOST, no unpack, irecvConsumed and getDeviceMr
//              NULL) over the built-in one.
enum class PluginMode { kDirect, kBounce, kHostOnly };
const char* to_string(PluginMode m);

// Loopback-only settings for both processes (plugin on lo, control on
// 127.0.0.1) and the plugin mode's variables. Call before the first endpoint
// of the process: children inherit it. TCPX_TEST_LISTEN_ADDR, when set,
// replaces 127.0.0.1 in loopback_config() (a peer inside a test's network
// namespace listens on its veth).
void set_test_env(PluginMode mode);
// "" when `mode` can run in this process, else why not: the host-only plugin
// wraps the built-in one, and under strict TCPX emulation the built-in one is
// initialised once per process, either directly or through the wrapper. ctest
// runs each test in a process of its own; this matters when a test program
// runs several modes in one process.
std::string plugin_mode_conflict(PluginMode mode);
inline void set_test_env(bool bounce) { set_test_env(bounce ? PluginMode::kBounce : PluginMode::kDirect); }
Config loopback_config();
Status make_endpoint(std::unique_ptr<Endpoint>* out, int gpu = 0, Config cfg = loopback_config());

// An endpoint of this process with one registered host buffer. The buffer is
// declared first so that it is freed last: the endpoint's progress thread
// may still send from it (a served read) until the endpoint is destroyed.
struct LocalSide {
  std::vector<uint8_t> buf;
  std::unique_ptr<Endpoint> ep;
  MrId mr = 0;
  // Creates the endpoint and registers a zeroed buffer of `bytes`.
  Status open(size_t bytes, const Config& cfg = loopback_config());
};

// Starts engine_peer in `role` with args, its stdin/stdout piped for the
// line protocol. extra_env entries "K=V" replace inherited ones. A non-empty
// launcher is a command that execs the peer in its place, e.g. {"ip",
// "netns", "exec", NAME}: the peer keeps the pid, so killing still reaches it.
// A plain TCP connection to 127.0.0.1:port (a hand-made, possibly hostile,
// client); the fd, or -1.
int raw_connect(uint16_t port);

Status start_engine_peer(ChildProcess* peer, const std::string& role, const std::vector<std::string>& args = {},
                         const std::vector<std::string>& extra_env = {},
                         const std::vector<std::string>& launcher = {});

}  // namespace tcpx::test

#endif  // TCPX_TESTS_ENGINE_TEST_UTIL_H_
