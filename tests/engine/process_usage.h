// What this process holds right now, from /proc/self: threads, open
// descriptors and resident memory. For tests that bound what a peer can make
// an endpoint allocate.
#ifndef TCPX_TESTS_ENGINE_PROCESS_USAGE_H_
#define TCPX_TESTS_ENGINE_PROCESS_USAGE_H_

#include <dirent.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tcpx::test {

struct ProcessUsage {
  long threads = 0;
  long fds = 0;
  long rss_kib = 0;

  static ProcessUsage now() {
    ProcessUsage u;
    if (FILE* f = std::fopen("/proc/self/status", "r")) {
      char line[256];
      while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::strncmp(line, "Threads:", 8) == 0) u.threads = std::atol(line + 8);
        if (std::strncmp(line, "VmRSS:", 6) == 0) u.rss_kib = std::atol(line + 6);
      }
      std::fclose(f);
    }
    if (DIR* d = opendir("/proc/self/fd")) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++u.fds;
      closedir(d);
      --u.fds;  // the directory's own descriptor
    }
    return u;
  }
  std::string to_string() const {
    return "threads " + std::to_string(threads) + ", fds " + std::to_string(fds) + ", RSS " +
           std::to_string(rss_kib / 1024) + " MiB";
  }
};

}  // namespace tcpx::test

#endif  // TCPX_TESTS_ENGINE_PROCESS_USAGE_H_
