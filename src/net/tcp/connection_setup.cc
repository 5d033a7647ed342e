#include "net/tcp/connection_setup.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "net/tcp/devices.h"
#include "net/tcp/plugin_log.h"
#include "net/tcp/recv_comm.h"
#include "net/tcp/send_comm.h"
#include "net/tcp/socket_ops.h"

namespace tcpx::tcp {
namespace {

constexpr uint64_t kHandleMagic = 0x74637078746370ULL;  // "tcpxtcp"
constexpr size_t kOffFamily = 8, kOffPort = 10, kOffAddr = 12, kOffScope = 28, kOffConnectId = 32,
                 kOffSpent = 40;
// Written at [40..48) once connect() returned a comm or an error for a handle.
constexpr uint64_t kSpentMagic = 0x5350454e54484e44ull;  // "SPENTHND"
// A half-open connection or an incomplete group is dropped after this long.
constexpr uint64_t kHandshakeTimeoutMs = 30000;
constexpr size_t kMaxPending = 1024;

uint64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint64_t random_nonce() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v)) {
    static std::atomic<uint64_t> counter{0};
    v = (static_cast<uint64_t>(getpid()) << 32) ^ now_ms() ^ (++counter * 0x9e3779b97f4a7c15ULL);
  }
  return v;
}

// A connect in progress, found again through the id stored in the handle.
struct ConnectState {
  enum class Stage { kConnecting, kHello, kDone };
  int nsocks = 0;
  int fds[kMaxSocketsPerComm];
  Stage stage[kMaxSocketsPerComm];
  uint8_t hello[kMaxSocketsPerComm][kHelloBytes];
  size_t sent[kMaxSocketsPerComm] = {};
  ConnectState() {
    for (int& f : fds) f = -1;
  }
  ~ConnectState() {
    for (int& f : fds) close_fd(&f);
  }
};

std::mutex g_connect_mu;
std::map<uint64_t, ConnectState*>& connects() {
  static auto* m = new std::map<uint64_t, ConnectState*>();
  return *m;
}
uint64_t g_next_connect_id = 1;

bool parse_handle(const uint8_t* h, sockaddr_storage* addr, socklen_t* len) {
  if (get_be64(h) != kHandleMagic) return false;
  int family = (h[kOffFamily] << 8) | h[kOffFamily + 1];
  uint16_t port_be;
  memcpy(&port_be, h + kOffPort, 2);
  *addr = sockaddr_storage{};
  if (family == 4) {
    auto* a = reinterpret_cast<sockaddr_in*>(addr);
    a->sin_family = AF_INET;
    a->sin_port = port_be;
    memcpy(&a->sin_addr, h + kOffAddr, 4);
    *len = sizeof(sockaddr_in);
    return true;
  }
  if (family == 6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = port_be;
    memcpy(&a->sin6_addr, h + kOffAddr, 16);
    a->sin6_scope_id = get_be32(h + kOffScope);
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// Ends a connect: forget its id, clear it from the handle, mark the handle
// spent, free the state.
void finish_connect(uint8_t* h, uint64_t id) {
  ConnectState* st = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_connect_mu);
    auto it = connects().find(id);
    if (it != connects().end()) {
      st = it->second;
      connects().erase(it);
    }
  }
  delete st;
  put_be64(h + kOffConnectId, 0);
  put_be64(h + kOffSpent, kSpentMagic);
}

// nsocks 0: from TCPX_P2P_TCP_NSOCKS.
ncclResult_t start_connect(uint8_t* h, const sockaddr_storage& addr, socklen_t len, int nsocks) {
  std::string why;
  if (nsocks == 0 && !read_nsocks(&nsocks, &why)) {
    TCP_WARN("%s", why.c_str());
    return ncclInvalidArgument;
  }
  auto* st = new (std::nothrow) ConnectState();
  if (st == nullptr) return ncclSystemError;
  st->nsocks = nsocks;
  Hello hello;
  hello.nsocks = nsocks;
  hello.nonce = random_nonce();
  for (int s = 0; s < nsocks; ++s) {
    hello.index = s;
    encode_hello(hello, st->hello[s]);
    st->stage[s] = ConnectState::Stage::kConnecting;
    st->fds[s] = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (st->fds[s] < 0 || !tune_data_socket(st->fds[s]) ||
        (connect(st->fds[s], reinterpret_cast<const sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS)) {
      int err = errno;
      TCP_WARN("connect to %s: %s", address_string(addr).c_str(), strerror(err));
      delete st;
      return errno_to_result(err);
    }
  }
  std::lock_guard<std::mutex> lock(g_connect_mu);
  uint64_t id = g_next_connect_id++;
  connects()[id] = st;
  put_be64(h + kOffConnectId, id);
  return ncclSuccess;
}

// Advances every socket as far as it goes without blocking; 0 when all are
// done, 7 (in progress) when some are not, an error code on failure.
ncclResult_t advance_connect(ConnectState* st) {
  bool all_done = true;
  for (int s = 0; s < st->nsocks; ++s) {
    if (st->stage[s] == ConnectState::Stage::kConnecting) {
      pollfd p{st->fds[s], POLLOUT, 0};
      if (poll(&p, 1, 0) <= 0 || p.revents == 0) {
        all_done = false;
        continue;
      }
      int err = 0;
      socklen_t el = sizeof(err);
      if (getsockopt(st->fds[s], SOL_SOCKET, SO_ERROR, &err, &el) != 0) err = errno;
      if (err != 0) {
        TCP_WARN("connect: %s", strerror(err));
        return errno_to_result(err);
      }
      st->stage[s] = ConnectState::Stage::kHello;
    }
    if (st->stage[s] == ConnectState::Stage::kHello) {
      ssize_t rc = send(st->fds[s], st->hello[s] + st->sent[s], kHelloBytes - st->sent[s],
                        MSG_NOSIGNAL | MSG_DONTWAIT);
      if (rc < 0 && errno != EINTR && !would_block(errno)) {
        TCP_WARN("connect: sending hello: %s", strerror(errno));
        return errno_to_result(errno);
      }
      if (rc > 0) st->sent[s] += static_cast<size_t>(rc);
      if (st->sent[s] == kHelloBytes) st->stage[s] = ConnectState::Stage::kDone;
    }
    if (st->stage[s] != ConnectState::Stage::kDone) all_done = false;
  }
  return all_done ? ncclSuccess : ncclInProgress;
}

}  // namespace

ncclResult_t listen_on(const sockaddr_storage& addr, socklen_t len, bool bounce_host, void* handle,
                       ListenComm** out) {
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    TCP_WARN("listen: socket: %s", strerror(errno));
    return ncclSystemError;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  sockaddr_storage bound = addr;
  socklen_t blen = len;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&bound), len) != 0 || listen(fd, 1024) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) != 0) {
    TCP_WARN("listen on %s: %s", address_string(addr).c_str(), strerror(errno));
    close(fd);
    return ncclSystemError;
  }
  auto* h = static_cast<uint8_t*>(handle);
  memset(h, 0, NCCL_NET_HANDLE_MAXSIZE);
  put_be64(h, kHandleMagic);
  if (bound.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&bound);
    h[kOffFamily + 1] = 4;
    memcpy(h + kOffPort, &a->sin_port, 2);
    memcpy(h + kOffAddr, &a->sin_addr, 4);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&bound);
    h[kOffFamily + 1] = 6;
    memcpy(h + kOffPort, &a->sin6_port, 2);
    memcpy(h + kOffAddr, &a->sin6_addr, 16);
    put_be32(h + kOffScope, a->sin6_scope_id);
  }
  auto* lc = new (std::nothrow) ListenComm(fd, bounce_host);
  if (lc == nullptr) {
    close(fd);
    return ncclSystemError;
  }
  *out = lc;
  return ncclSuccess;
}

ncclResult_t connect_step(void* handle, int nsocks, SendComm** out) {
  auto* h = static_cast<uint8_t*>(handle);
  sockaddr_storage addr;
  socklen_t len = 0;
  if (!parse_handle(h, &addr, &len)) {
    TCP_WARN("connect: the handle is not one this plugin's listen() wrote");
    return ncclInvalidArgument;
  }
  if (strict_emulation() && get_be64(h + kOffSpent) == kSpentMagic) {
    TCP_WARN("connect: called again with a handle whose connect already returned a comm or an error; "
             "Google's TCPX plugin frees that state and would use it again (strict TCPX emulation)");
    return ncclInvalidUsage;
  }
  uint64_t id = get_be64(h + kOffConnectId);
  if (id == 0) {
    ncclResult_t r = start_connect(h, addr, len, nsocks);
    if (r != ncclSuccess) {
      put_be64(h + kOffSpent, kSpentMagic);
      return r;
    }
    id = get_be64(h + kOffConnectId);
  }
  ConnectState* st = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_connect_mu);
    auto it = connects().find(id);
    if (it != connects().end()) st = it->second;
  }
  if (st == nullptr) {
    TCP_WARN("connect: the handle names no connect in progress in this process");
    return ncclInvalidArgument;
  }
  ncclResult_t r = advance_connect(st);
  if (r == ncclInProgress) return ncclSuccess;
  if (r != ncclSuccess) {
    finish_connect(h, id);
    return r;
  }
  auto* comm = new (std::nothrow) SendComm(st->nsocks, st->fds);
  if (comm == nullptr) {
    finish_connect(h, id);
    return ncclSystemError;
  }
  for (int& f : st->fds) f = -1;  // now owned by the comm
  finish_connect(h, id);
  *out = comm;
  return ncclSuccess;
}

ListenComm::~ListenComm() {
  magic_ = 0;
  close_fd(&fd_);
  for (auto& p : pending_) close_fd(&p.fd);
  for (auto& [nonce, g] : groups_)
    for (int s = 0; s < g.nsocks; ++s) close_fd(&g.fds[s]);
  for (auto& g : ready_)
    for (int s = 0; s < g.nsocks; ++s) close_fd(&g.fds[s]);
}

void ListenComm::accept_new(uint64_t now) {
  for (;;) {
    int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (!would_block(errno)) TCP_WARN("accept: %s", strerror(errno));
      return;
    }
    if (pending_.size() >= kMaxPending || !tune_data_socket(fd)) {
      TCP_WARN("accept: dropping a connection (%zu handshakes pending)", pending_.size());
      close(fd);
      continue;
    }
    Pending p;
    p.fd = fd;
    p.since_ms = now;
    pending_.push_back(p);
  }
}

void ListenComm::read_hellos(uint64_t now) {
  for (size_t i = 0; i < pending_.size();) {
    Pending& p = pending_[i];
    ssize_t rc = recv(p.fd, p.hello + p.got, kHelloBytes - p.got, MSG_DONTWAIT);
    bool drop = false;
    if (rc > 0) p.got += static_cast<size_t>(rc);
    else if (rc == 0) drop = true;  // closed before finishing its hello
    else if (errno != EINTR && !would_block(errno)) drop = true;
    if (!drop && p.got == kHelloBytes) {
      Hello hello;
      if (!decode_hello(p.hello, kMaxSocketsPerComm, &hello)) {
        TCP_WARN("accept: rejected a connection that sent no valid hello");
        drop = true;
      } else {
        auto [it, fresh] = groups_.try_emplace(hello.nonce);
        Group& g = it->second;
        if (fresh) {
          g.nsocks = hello.nsocks;
          for (int& f : g.fds) f = -1;
          g.since_ms = now;
        }
        if (g.nsocks != hello.nsocks || g.fds[hello.index] >= 0) {
          TCP_WARN("accept: rejected a socket whose hello contradicts its group");
          drop = true;
        } else {
          g.fds[hello.index] = p.fd;
          p.fd = -1;
          if (++g.count == g.nsocks) {
            ready_.push_back(g);
            groups_.erase(it);
          }
          pending_.erase(pending_.begin() + static_cast<long>(i));
          continue;
        }
      }
    }
    if (drop) {
      close_fd(&p.fd);
      pending_.erase(pending_.begin() + static_cast<long>(i));
      continue;
    }
    ++i;
  }
}

void ListenComm::expire(uint64_t now) {
  for (size_t i = 0; i < pending_.size();) {
    if (now - pending_[i].since_ms > kHandshakeTimeoutMs) {
      close_fd(&pending_[i].fd);
      pending_.erase(pending_.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
  for (auto it = groups_.begin(); it != groups_.end();) {
    if (now - it->second.since_ms > kHandshakeTimeoutMs) {
      TCP_WARN("accept: dropping a comm whose sockets did not all arrive");
      for (int s = 0; s < it->second.nsocks; ++s) close_fd(&it->second.fds[s]);
      it = groups_.erase(it);
    } else {
      ++it;
    }
  }
}

ncclResult_t ListenComm::accept_step(RecvComm** out) {
  if (returned_ && strict_emulation()) {
    TCP_WARN("accept: called again on a listen comm that already returned a comm or an error; Google's TCPX "
             "plugin frees its accept state then and would free it twice (strict TCPX emulation)");
    return ncclInvalidUsage;
  }
  uint64_t now = now_ms();
  accept_new(now);
  read_hellos(now);
  expire(now);
  if (ready_.empty()) return ncclSuccess;
  Group g = ready_.front();
  ready_.pop_front();
  returned_ = true;
  auto* comm = new (std::nothrow) RecvComm(g.nsocks, g.fds, bounce_host_);
  if (comm == nullptr || !comm->init()) {
    if (comm != nullptr) delete comm;  // closes the sockets
    else for (int s = 0; s < g.nsocks; ++s) close_fd(&g.fds[s]);
    return ncclSystemError;
  }
  *out = comm;
  return ncclSuccess;
}

}  // namespace tcpx::tcp
