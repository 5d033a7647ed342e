#include "engine/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace tcpx::engine {

Status ControlListener::bind(const std::string& addr, uint16_t port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    return InvalidArgument("listen address '" + addr + "' is not an IPv4 or IPv6 address");
  }
  fd_ = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return TransportError(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd_, 128) != 0) {
    Status s = TransportError("cannot listen on " + addr + ":" + std::to_string(port) + ": " + std::strerror(errno));
    close(fd_);
    fd_ = -1;
    return s;
  }
  socklen_t sl = sizeof ss;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &sl);
  port_ = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
  return Status::Ok();
}

void ControlListener::run(const HandshakeParams& params, int timeout_ms, OnReady on_ready) {
  params_ = params;
  params_.cancel = &stop_;
  timeout_ms_ = timeout_ms;
  on_ready_ = std::move(on_ready);
  thread_ = std::thread([this] { accept_loop(); });
}

void ControlListener::accept_loop() {
  while (!stop_.load()) {
    pollfd p{fd_, POLLIN, 0};
    // A bounded wait: stop() needs no extra wake-up channel, and finished
    // handshake threads get joined regularly.
    int r = poll(&p, 1, 50);
    reap(false);
    if (r <= 0) continue;
    int cfd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (cfd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    Worker& w = workers_.emplace_back();
    w.t = std::thread([this, cfd, &w] {
      run_handshake(cfd);
      w.done = true;
    });
  }
}

void ControlListener::run_handshake(int fd) {
  HandshakeResult hs;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  Status s = handshake_accept(params_, fd, deadline, &hs);
  if (!s.ok()) {
    TCPX_WARN("incoming handshake failed: %s", s.to_string().c_str());
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = s;
    return;
  }
  if (!stop_.load()) on_ready_(std::move(hs));
}

void ControlListener::reap(bool all) {
  // Join outside the lock: a finishing handshake takes mu_ to record its error.
  std::list<Worker> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      auto next = std::next(it);
      if (all || it->done.load()) finished.splice(finished.end(), workers_, it);
      it = next;
    }
  }
  for (auto& w : finished)
    if (w.t.joinable()) w.t.join();
}

void ControlListener::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  reap(true);
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Status ControlListener::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

}  // namespace tcpx::engine
