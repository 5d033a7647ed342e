#include "harness/rendezvous.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace tcpx::conformance {
namespace {

// Messages are small (handles, tokens, size lists); anything bigger is a bug or
// a stray connection, not something to allocate for.
constexpr uint32_t kMaxMessageBytes = 16u << 20;

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Waits for `events` on fd until the deadline. OK when ready.
Status wait_fd(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return Status::Ok();
    if (r == 0) return TimedOut(std::string("rendezvous: timed out waiting to ") + what);
    if (errno != EINTR) return TransportError(errno_text("rendezvous poll"));
  }
}

}  // namespace

Status split_host_port(const std::string& address, std::string* host, int* port) {
  std::string h;
  std::string p;
  if (!address.empty() && address[0] == '[') {
    auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return InvalidArgument("rendezvous address '" + address + "' is not [v6]:port");
    h = address.substr(1, close - 1);
    p = address.substr(close + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) return InvalidArgument("rendezvous address '" + address + "' has no :port");
    h = address.substr(0, colon);
    p = address.substr(colon + 1);
  }
  char* end = nullptr;
  long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || v < 0 || v > 65535)
    return InvalidArgument("rendezvous address '" + address + "' has a bad port");
  *host = h.empty() ? "0.0.0.0" : h;
  *port = static_cast<int>(v);
  return Status::Ok();
}

RendezvousConnection& RendezvousConnection::operator=(RendezvousConnection&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void RendezvousConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status RendezvousConnection::connect(const std::string& address, int timeout_ms, RendezvousConnection* out) {
  std::string host;
  int port = 0;
  TCPX_RETURN_IF_ERROR(split_host_port(address, &host, &port));
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last_error = "no attempt";
  auto backoff = std::chrono::milliseconds(5);
  while (Clock::now() < deadline) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (gai != 0) return InvalidArgument("rendezvous: cannot resolve '" + host + "': " + gai_strerror(gai));
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        freeaddrinfo(res);
        *out = RendezvousConnection(fd);
        return Status::Ok();
      }
      last_error = errno_text("connect");
      ::close(fd);
    }
    freeaddrinfo(res);
    // The driver may still be starting: retry with a growing pause.
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
  }
  return TimedOut("rendezvous: could not reach " + address + " (" + last_error + ")");
}

Status RendezvousConnection::send(std::string_view message) {
  if (fd_ < 0) return InvalidArgument("rendezvous: send on a closed connection");
  if (message.size() > kMaxMessageBytes) return InvalidArgument("rendezvous: message too large");
  uint32_t len = htonl(static_cast<uint32_t>(message.size()));
  std::string frame(reinterpret_cast<const char*>(&len), sizeof(len));
  frame.append(message);
  size_t off = 0;
  auto deadline = Clock::now() + std::chrono::milliseconds(kRendezvousTimeoutMs);
  while (off < frame.size()) {
    ssize_t n = ::send(fd_, frame.data() + off, frame.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      TCPX_RETURN_IF_ERROR(wait_fd(fd_, POLLOUT, deadline, "send"));
      continue;
    }
    return PeerClosed(errno_text("rendezvous send"));
  }
  return Status::Ok();
}

Status RendezvousConnection::recv(std::string* message, int timeout_ms) {
  if (fd_ < 0) return InvalidArgument("rendezvous: recv on a closed connection");
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto read_exact = [&](char* dst, size_t n) -> Status {
    size_t off = 0;
    while (off < n) {
      TCPX_RETURN_IF_ERROR(wait_fd(fd_, POLLIN, deadline, "receive from the other half"));
      ssize_t r = ::recv(fd_, dst + off, n - off, MSG_DONTWAIT);
      if (r > 0) {
        off += static_cast<size_t>(r);
      } else if (r == 0) {
        return PeerClosed("rendezvous: the other half closed the connection (it failed or exited)");
      } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
        return PeerClosed(errno_text("rendezvous recv"));
      }
    }
    return Status::Ok();
  };
  uint32_t len = 0;
  TCPX_RETURN_IF_ERROR(read_exact(reinterpret_cast<char*>(&len), sizeof(len)));
  len = ntohl(len);
  if (len > kMaxMessageBytes) return ProtocolError("rendezvous: oversized message");
  message->assign(len, '\0');
  return read_exact(message->data(), len);
}

Status RendezvousConnection::expect(std::string_view expected, int timeout_ms) {
  std::string got;
  TCPX_RETURN_IF_ERROR(recv(&got, timeout_ms));
  if (got != expected)
    return ProtocolError("rendezvous: expected '" + std::string(expected) + "', got '" + got.substr(0, 80) + "'");
  return Status::Ok();
}

Status RendezvousConnection::sync(std::string_view tag, int timeout_ms) {
  std::string token = "sync:" + std::string(tag);
  TCPX_RETURN_IF_ERROR(send(token));
  return expect(token, timeout_ms);
}

RendezvousListener& RendezvousListener::operator=(RendezvousListener&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    port_ = o.port_;
    o.fd_ = -1;
  }
  return *this;
}

RendezvousListener::~RendezvousListener() {
  if (fd_ >= 0) ::close(fd_);
}

Status RendezvousListener::open(const std::string& bind_address, RendezvousListener* out) {
  std::string host;
  int port = 0;
  TCPX_RETURN_IF_ERROR(split_host_port(bind_address, &host, &port));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (gai != 0) return InvalidArgument("rendezvous: cannot resolve '" + host + "': " + gai_strerror(gai));
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 16) == 0) {
      sockaddr_storage ss{};
      socklen_t sl = sizeof(ss);
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl);
      int bound = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                           : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
      freeaddrinfo(res);
      RendezvousListener l;
      l.fd_ = fd;
      l.port_ = bound;
      *out = std::move(l);
      return Status::Ok();
    }
    last_error = errno_text("bind/listen");
    ::close(fd);
  }
  freeaddrinfo(res);
  return TransportError("rendezvous: cannot listen on " + bind_address + " (" + last_error + ")");
}

Status RendezvousListener::accept(int timeout_ms, RendezvousConnection* out) {
  if (fd_ < 0) return InvalidArgument("rendezvous: listener is closed");
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    TCPX_RETURN_IF_ERROR(wait_fd(fd_, POLLIN, deadline, "accept the other half"));
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      *out = RendezvousConnection(fd);
      return Status::Ok();
    }
    if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
      return TransportError(errno_text("rendezvous accept"));
  }
}

}  // namespace tcpx::conformance
