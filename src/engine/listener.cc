#include "engine/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "common/socket_error.h"

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
  if (fd_ < 0) return socket_error("socket", errno, SocketStage::kSetup);
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd_, 128) != 0) {
    Status s = socket_error("cannot listen on " + addr + ":" + std::to_string(port), errno, SocketStage::kSetup);
    close(fd_);
    fd_ = -1;
    return s;
  }
  socklen_t sl = sizeof ss;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &sl);
  port_ = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
  return Status::Ok();
}

void ControlListener::run(const HandshakeParams& params, const ListenerLimits& limits, OnReady on_ready) {
  params_ = params;
  limits_ = limits;
  on_ready_ = std::move(on_ready);
  thread_ = std::thread([this] { loop(); });
}

void ControlListener::loop() {
  std::vector<pollfd> fds;
  int idle = 0;  // rounds in a row in which no bring-up moved
  while (!stop_.load()) {
    auto now = Clock::now();
    // A bounded wait: stop() needs no extra wake-up channel.
    auto wake = now + std::chrono::milliseconds(50);
    bool stepping = false;
    fds.clear();
    bool accepting = now >= accept_paused_until_;
    fds.push_back({accepting ? fd_ : -1, POLLIN, 0});
    for (auto& h : pending_) {
      fds.push_back({h->fd(), h->events(), 0});
      stepping |= h->wants_steps();
      wake = std::min(wake, h->deadline());
    }
    if (!accepting) wake = std::min(wake, accept_paused_until_);
    // Plugin connects and accepts are steps with no fd to wait on: while any
    // handshake brings channels up, come back within 0.1-1 ms (backing off
    // while nothing moves), as the blocking connector does.
    auto wait = stepping ? std::chrono::microseconds(100 * idle) : std::chrono::microseconds(0);
    if (!stepping && wake > now) wait = std::chrono::duration_cast<std::chrono::microseconds>(wake - now);
    timespec ts{static_cast<time_t>(wait.count() / 1000000), static_cast<long>(wait.count() % 1000000) * 1000};
    if (ppoll(fds.data(), fds.size(), &ts, nullptr) < 0 && errno != EINTR) {
      record_failure("", socket_error("listener poll", errno, SocketStage::kSetup));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    bool moved = false;
    // Backwards, so removing entry i (swapped with the last, already
    // visited) keeps the pollfd indices of the entries still to visit.
    for (size_t i = pending_.size(); i-- > 0;) {
      AcceptHandshake& h = *pending_[i];
      if (fds[i + 1].revents == 0 && !h.wants_steps() && Clock::now() < h.deadline()) continue;
      bool stepped = false;
      Status s = h.step(&stepped);
      moved |= stepped;
      if (s.in_progress()) continue;
      if (s.ok()) {
        if (!stop_.load()) on_ready_(h.take_result());
      } else {
        record_failure(h.peer_address(), s);
      }
      pending_[i] = std::move(pending_.back());
      pending_.pop_back();
    }
    idle = moved ? 0 : std::min(idle + 1, 10);
    if ((fds[0].revents & POLLIN) != 0) accept_new();
  }
  pending_.clear();
}

void ControlListener::accept_new() {
  // Bounded per round, so pending handshakes get their turn during a flood.
  for (int n = 0; n < 256; ++n) {
    int cfd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: the connection stays in the backlog
        // and the socket stays readable; look again a little later instead
        // of spinning.
        record_failure("", socket_error("accept", errno, SocketStage::kSetup));
        accept_paused_until_ = Clock::now() + std::chrono::milliseconds(100);
      }
      return;
    }
    if (pending_.size() >= static_cast<size_t>(limits_.max_pending)) {
      refuse(cfd);
      continue;
    }
    pending_.push_back(std::make_unique<AcceptHandshake>(params_, cfd, limits_.hello_timeout_ms, limits_.timeout_ms));
  }
}

void ControlListener::refuse(int fd) {
  Status why(StatusCode::kBusy, "too many handshakes in progress (" + std::to_string(limits_.max_pending) +
                                    ", TCPX_MAX_HANDSHAKES); try again later");
  std::vector<uint8_t> frame;
  if (append_frame(FrameType::kReject, 0, encode_reject({why.code(), why.message()}), &frame).ok())
    (void)send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  // Read what the peer already sent (its HELLO): closing with unread bytes
  // would reset the connection, and the reset can overtake our REJECT.
  shutdown(fd, SHUT_WR);
  char sink[512];
  while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
  close(fd);
  record_failure("", why);
}

void ControlListener::record_failure(const std::string& peer, const Status& s) {
  Status recorded = peer.empty() ? s : Status(s.code(), "handshake with " + peer + ": " + s.message());
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = recorded;
  }
  // A flood of bad connections must not turn into a flood of log lines: at
  // most one a second, with the count of those left out.
  auto now = Clock::now();
  if (now - last_warning_ < std::chrono::seconds(1)) {
    ++warnings_suppressed_;
    return;
  }
  if (warnings_suppressed_ > 0)
    TCPX_WARN("incoming handshake failed: %s (and %d more since the last message)", recorded.to_string().c_str(),
              warnings_suppressed_);
  else
    TCPX_WARN("incoming handshake failed: %s", recorded.to_string().c_str());
  last_warning_ = now;
  warnings_suppressed_ = 0;
}

void ControlListener::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Status ControlListener::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

}  // namespace tcpx::engine
