// tcpx-soak's command line. Defaults are what ctest's soak_2min runs, with
// --seconds 120.
#ifndef TCPX_TESTS_SOAK_SOAK_OPTIONS_H_
#define TCPX_TESTS_SOAK_SOAK_OPTIONS_H_

#include <cstdint>
#include <string>

#include "tcpx/status.h"

namespace tcpx::soak {

struct SoakOptions {
  int seconds = 120;          // whole run, warm-up included
  int warmup_seconds = -1;    // -1: a sixth of the run, at most 30 s
  int peers = 3;              // peer processes connected at a time
  int fault_every_ms = 1500;  // mean time between kills/freezes
  int peer_timeout_ms = 1000; // TCPX_PEER_TIMEOUT_MS of every endpoint
  uint64_t min_ops = 50, max_ops = 2000;  // requests per peer before it retires
  uint64_t seed = 1;
  // Leak bounds, end against warm-up (both sampled with no peer connected).
  // RSS: the heap keeps freed memory for reuse, so some growth is normal;
  // see README.md here for the measured figures behind the default.
  int rss_growth_mib = 16;
  int fd_slack = 4;
  int thread_slack = 2;

  // Peer role (started by the server): --peer PORT SEED OPS.
  bool peer = false;
  uint16_t peer_server_port = 0;
  uint64_t peer_seed = 0, peer_ops = 0;

  static Status parse(int argc, char** argv, SoakOptions* out);
  int warmup() const;
};

const char* soak_usage();

}  // namespace tcpx::soak

#endif  // TCPX_TESTS_SOAK_SOAK_OPTIONS_H_
