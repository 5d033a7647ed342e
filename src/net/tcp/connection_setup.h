// Establishing comms without ever blocking: listen() writes a handle, connect()
// and accept() each take one step per call and return a NULL comm until done.
//
// Handle (128 bytes, what the caller ships to the peer):
//   [0..8)   magic
//   [8..10)  address family: 4 or 6 (big-endian)
//   [10..12) port (big-endian)
//   [12..28) address bytes (4 used for IPv4)
//   [28..32) IPv6 scope id (big-endian)
//   [32..40) local only: the id of this process's connect in progress (0 when
//            none), so a caller can repeat connect() with the same bytes.
//   [40..48) local only: a marker written once connect() returned a comm or
//            an error (strict TCPX emulation refuses the handle after that).
#ifndef TCPX_NET_TCP_CONNECTION_SETUP_H_
#define TCPX_NET_TCP_CONNECTION_SETUP_H_

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "net/nccl_net_v7.h"
#include "net/tcp/options.h"
#include "net/tcp/wire.h"

namespace tcpx::tcp {

class RecvComm;
class SendComm;

// Accepted sockets that have not yet sent a complete, valid hello, and
// groups of sockets of one comm that are not complete yet.
class ListenComm {
 public:
  static constexpr uint32_t kMagic = 0x4c434f4d;  // "LCOM"
  ListenComm(int fd, bool bounce_host) : fd_(fd), bounce_host_(bounce_host) {}
  ~ListenComm();
  ListenComm(const ListenComm&) = delete;
  ListenComm& operator=(const ListenComm&) = delete;

  static ListenComm* from(void* p) {
    auto* c = static_cast<ListenComm*>(p);
    return (c != nullptr && c->magic_ == kMagic) ? c : nullptr;
  }

  // One step; *out stays NULL until a comm is complete. Hands out every comm
  // that connects to it, except under strict TCPX emulation, where a call
  // after one returned a comm or an error is refused (5).
  ncclResult_t accept_step(RecvComm** out);

 private:
  struct Pending {
    int fd = -1;
    uint8_t hello[kHelloBytes] = {};
    size_t got = 0;
    uint64_t since_ms = 0;
  };
  struct Group {
    int nsocks = 0;
    int fds[kMaxSocketsPerComm];
    int count = 0;
    uint64_t since_ms = 0;
  };
  void accept_new(uint64_t now);
  void read_hellos(uint64_t now);
  void expire(uint64_t now);

  uint32_t magic_ = kMagic;
  int fd_ = -1;
  bool bounce_host_ = false;
  bool returned_ = false;  // a comm or an error was handed out
  std::vector<Pending> pending_;
  std::map<uint64_t, Group> groups_;  // by nonce
  std::deque<Group> ready_;  // complete, in the order they completed
};

// Binds and listens on `addr` (port chosen by the kernel), fills `handle`.
ncclResult_t listen_on(const sockaddr_storage& addr, socklen_t len, bool bounce_host, void* handle,
                       ListenComm** out);
// One step of connecting to the listener in `handle`; *out stays NULL until
// every socket is connected and has sent its hello. nsocks: sockets of the
// comm (1..8), or 0 for TCPX_P2P_TCP_NSOCKS; only the first step's counts.
ncclResult_t connect_step(void* handle, int nsocks, SendComm** out);

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_CONNECTION_SETUP_H_
