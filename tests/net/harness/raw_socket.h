// Raw TCP access to a plugin's listening socket, for hostile-client tests.
// The listening address is found without knowing the plugin's handle layout:
// the sockets this process listens on are read from /proc (our fds' inodes
// matched against /proc/net/tcp and tcp6) before and after listen().
#ifndef TCPX_TESTS_NET_HARNESS_RAW_SOCKET_H_
#define TCPX_TESTS_NET_HARNESS_RAW_SOCKET_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tcpx/status.h"

namespace tcpx::conformance {

struct ListeningSocket {
  sockaddr_storage addr{};  // wildcard addresses already turned into loopback
  socklen_t len = 0;
  uint64_t inode = 0;
};

std::vector<ListeningSocket> own_listening_sockets();
// Those in `after` that are not in `before`.
std::vector<ListeningSocket> new_listening_sockets(const std::vector<ListeningSocket>& before,
                                                   const std::vector<ListeningSocket>& after);

// A blocking client socket with a send/recv timeout, closed on destruction.
class RawClient {
 public:
  RawClient() = default;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  RawClient(RawClient&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ~RawClient() { close(); }
  Status connect(const ListeningSocket& to);
  // Writes all of `bytes`; a reset by the plugin is reported, not fatal.
  Status write(const void* bytes, size_t n);
  void close();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace tcpx::conformance

#endif  // TCPX_TESTS_NET_HARNESS_RAW_SOCKET_H_
