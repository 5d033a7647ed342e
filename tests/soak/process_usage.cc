#include "process_usage.h"

#include <dirent.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace tcpx::soak {

ProcessUsage ProcessUsage::sample() {
  ProcessUsage u;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) u.rss_kib = std::stoul(line.substr(6));
    if (line.rfind("Threads:", 0) == 0) u.threads = std::stoi(line.substr(8));
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++u.fds;
    closedir(d);
    --u.fds;  // the directory stream's own descriptor
  }
  return u;
}

std::string ProcessUsage::to_string() const {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "rss %.1f MiB, %d fds, %d threads", rss_kib / 1024.0, fds, threads);
  return buf;
}

}  // namespace tcpx::soak
