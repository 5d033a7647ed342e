// What the soak watches for leaks in its own (server) process: resident
// memory, open file descriptors and threads, read from /proc/self.
#ifndef TCPX_TESTS_SOAK_PROCESS_USAGE_H_
#define TCPX_TESTS_SOAK_PROCESS_USAGE_H_

#include <cstddef>
#include <string>

namespace tcpx::soak {

struct ProcessUsage {
  size_t rss_kib = 0;  // VmRSS
  int fds = 0;         // entries of /proc/self/fd
  int threads = 0;     // Threads: in /proc/self/status

  static ProcessUsage sample();
  std::string to_string() const;  // "rss 41.2 MiB, 12 fds, 5 threads"
};

}  // namespace tcpx::soak

#endif  // TCPX_TESTS_SOAK_PROCESS_USAGE_H_
