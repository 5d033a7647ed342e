#include "net/tcp/devices.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>

namespace tcpx::tcp {
namespace {

// getProperties hands out char* that must outlive any re-enumeration, so
// strings are interned for the life of the process (a handful of names).
const char* intern(const std::string& s) {
  static std::mutex mu;
  static std::set<std::string>* pool = new std::set<std::string>();
  std::lock_guard<std::mutex> lock(mu);
  return pool->insert(s).first->c_str();
}

std::string sysfs_path(const std::string& ifname) {
  char resolved[PATH_MAX];
  std::string dev = "/sys/class/net/" + ifname + "/device";
  if (realpath(dev.c_str(), resolved) != nullptr) return resolved;
  std::string net = "/sys/class/net/" + ifname;
  if (realpath(net.c_str(), resolved) != nullptr) return resolved;
  return "";
}

int link_speed(const std::string& ifname, bool loopback) {
  std::ifstream f("/sys/class/net/" + ifname + "/speed");
  int mbps = 0;
  if (f >> mbps && mbps > 0) return mbps;
  return loopback ? 100000 : 10000;  // unknown: a plausible figure for logs
}

bool usable_address(const sockaddr* sa, int family_wanted) {
  if (sa == nullptr) return false;
  if (sa->sa_family == AF_INET) return family_wanted != 6;
  if (sa->sa_family == AF_INET6) {
    if (family_wanted == 4) return false;
    // Link-local needs a scope id the peer cannot know; skip it.
    auto* a6 = reinterpret_cast<const sockaddr_in6*>(sa);
    return !IN6_IS_ADDR_LINKLOCAL(&a6->sin6_addr);
  }
  return false;
}

}  // namespace

std::string address_string(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, buf, sizeof(buf));
    return buf;
  }
  if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, buf, sizeof(buf));
    return std::string("[") + buf + "]";
  }
  return buf;
}

bool discover_devices(const Options& opts, std::vector<NetDevice>* out, std::string* why) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    *why = std::string("getifaddrs: ") + strerror(errno);
    return false;
  }
  struct Candidate {
    NetDevice dev;
    bool loopback;
    int order;  // position in TCPX_P2P_TCP_IFNAME, or 0
  };
  std::vector<Candidate> found;
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if ((ifa->ifa_flags & IFF_UP) == 0 || !usable_address(ifa->ifa_addr, opts.family)) continue;
    std::string name(ifa->ifa_name);
    int order = 0;
    if (!opts.ifnames.empty()) {
      auto it = std::find(opts.ifnames.begin(), opts.ifnames.end(), name);
      if (it == opts.ifnames.end()) continue;
      order = static_cast<int>(it - opts.ifnames.begin());
    }
    bool loopback = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
    auto same = std::find_if(found.begin(), found.end(),
                             [&](const Candidate& c) { return c.dev.ifname == name; });
    // One device per interface: IPv4 wins unless only IPv6 was asked for.
    if (same != found.end()) {
      if (same->dev.addr.ss_family == AF_INET || ifa->ifa_addr->sa_family != AF_INET) continue;
    }
    NetDevice d;
    d.ifname = name;
    d.addr_len = ifa->ifa_addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    memcpy(&d.addr, ifa->ifa_addr, d.addr_len);
    if (same != found.end()) same->dev = d;
    else found.push_back({d, loopback, order});
  }
  freeifaddrs(list);
  if (found.empty()) {
    *why = opts.ifnames.empty() ? "no interface is up with a usable address"
                                : "no interface named in TCPX_P2P_TCP_IFNAME is up with a usable address";
    return false;
  }
  std::stable_sort(found.begin(), found.end(), [&](const Candidate& a, const Candidate& b) {
    if (!opts.ifnames.empty()) return a.order < b.order;
    return a.loopback && !b.loopback;
  });
  out->clear();
  for (auto& c : found) {
    NetDevice d = c.dev;
    d.name = intern(d.ifname);
    d.pci_path = intern(sysfs_path(d.ifname));
    d.speed_mbps = link_speed(d.ifname, c.loopback);
    out->push_back(std::move(d));
  }
  return true;
}

}  // namespace tcpx::tcp
