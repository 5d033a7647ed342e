// Everything the plugin reads from the environment, in one place. Values are
// read at init() except the socket count, which is read at each connect()
// because the engine may set it after loading the plugin.
#ifndef TCPX_NET_TCP_OPTIONS_H_
#define TCPX_NET_TCP_OPTIONS_H_

#include <string>
#include <vector>

namespace tcpx::tcp {

inline constexpr int kMaxSocketsPerComm = 8;

struct Options {
  // TCPX_P2P_TCP_BOUNCE_HOST=1: host receives also land in the bounce buffer
  // and come with loadMeta, like CUDA ones (tests the unpack path on CPUs).
  bool bounce_host = false;
  // TCPX_P2P_TCP_IFNAME: comma-separated interface names to use, in order.
  std::vector<std::string> ifnames;
  // TCPX_P2P_TCP_FAMILY: 0 = IPv4 when the interface has it, else IPv6;
  // 4 or 6 = that family only.
  int family = 0;
};

// Fills *out from the environment; false (with *why) on a malformed value.
bool read_options(Options* out, std::string* why);
// TCPX_P2P_TCP_NSOCKS (1..8, default 1); false (with *why) when malformed.
bool read_nsocks(int* out, std::string* why);

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_OPTIONS_H_
