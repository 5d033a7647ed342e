#include "oob_ip.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include "tcpx/config.h"

namespace tcpx_py {

tcpx::Status oob_ip(std::string* out) {
  tcpx::Config config;
  TCPX_RETURN_IF_ERROR(tcpx::Config::from_env(&config));
  if (!config.listen_addr.empty()) {
    *out = config.listen_addr;
    return tcpx::Status::Ok();
  }
  *out = "127.0.0.1";
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return tcpx::Status::Ok();
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
    char text[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)) != nullptr) {
      *out = text;
      break;
    }
  }
  freeifaddrs(list);
  return tcpx::Status::Ok();
}

}  // namespace tcpx_py
