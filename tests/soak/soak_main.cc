// tcpx-soak: the engine under hours of mixed traffic and peer faults
// (README.md here). Without --peer it is the server and orchestrator; it
// re-executes itself with --peer for each peer process.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "crash_report.h"
#include "soak_options.h"
#include "soak_peer.h"
#include "soak_server.h"

int main(int argc, char** argv) {
  using namespace tcpx::soak;
  SoakOptions opts;
  tcpx::Status s = SoakOptions::parse(argc, argv, &opts);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n%s", s.to_string().c_str(), soak_usage());
    return 2;
  }
  // Large blocks straight from mmap and back to the kernel when freed: with
  // glibc's default, the threshold climbs after the first free of a big block
  // and every thread's arena keeps several freed 4 MiB regions, which hides
  // (and imitates) leaks in the RSS figures.
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  install_crash_report(opts.peer ? "tcpx-soak peer" : "tcpx-soak");
  if (opts.peer) return run_peer(opts.peer_server_port, opts.peer_seed, opts.peer_ops);
  // Loopback only, for this process and (inherited) every peer.
  setenv("TCPX_P2P_TCP_IFNAME", "lo", 1);
  setenv("TCPX_P2P_TCP_FAMILY", "4", 1);
  setenv("TCPX_LISTEN_ADDR", "127.0.0.1", 1);
  setenv("TCPX_PEER_TIMEOUT_MS", std::to_string(opts.peer_timeout_ms).c_str(), 1);
  SoakServer server(opts);
  return server.run();
}
