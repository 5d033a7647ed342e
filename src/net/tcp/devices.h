// The plugin's devices: one per usable network interface (UP, with an IPv4 or
// a non-link-local IPv6 address). Loopback comes first so that device 0 stays
// on the host in tests and CI; set TCPX_P2P_TCP_IFNAME to choose interfaces
// (and their order) for traffic between hosts.
#ifndef TCPX_NET_TCP_DEVICES_H_
#define TCPX_NET_TCP_DEVICES_H_

#include <sys/socket.h>

#include <string>
#include <vector>

#include "net/tcp/options.h"

namespace tcpx::tcp {

struct NetDevice {
  std::string ifname;
  sockaddr_storage addr{};  // port 0; the address listen() binds to
  socklen_t addr_len = 0;
  const char* name = "";      // interned: lives as long as the process
  const char* pci_path = "";  // interned
  int speed_mbps = 0;
};

// Enumerates interfaces as `opts` asks; false (with *why) when none qualify.
bool discover_devices(const Options& opts, std::vector<NetDevice>* out, std::string* why);

// Printable "addr" or "[addr]" for logs.
std::string address_string(const sockaddr_storage& addr);

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_DEVICES_H_
