#include "fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace tcpx::test {
namespace {

constexpr int kPollMs = 20;           // how often the relay looks at its flags
constexpr int kAcceptWaitMs = 10000;  // the test connects well within this

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

// Writes all n bytes to a blocking socket; false when the socket is gone.
bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

FaultProxy::FaultProxy(uint16_t target_port) : target_port_(target_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return;
  }
  listen_fd_ = fd;
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { run(); });
}

FaultProxy::~FaultProxy() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

void FaultProxy::run() {
  pollfd lp{listen_fd_, POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kAcceptWaitMs);
  while (!stop_.load() && poll(&lp, 1, kPollMs) == 0)
    if (std::chrono::steady_clock::now() > deadline) return;
  if (stop_.load()) return;
  int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (client < 0) return;
  int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in t = loopback(target_port_);
  if (server < 0 || connect(server, reinterpret_cast<sockaddr*>(&t), sizeof t) != 0) {
    close(client);
    if (server >= 0) close(server);
    return;
  }
  uint8_t buf[64 * 1024];
  bool open = true;
  while (open && !stop_.load() && !cut_.load()) {
    pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (poll(p, 2, kPollMs) <= 0) continue;
    for (int i = 0; i < 2 && open; ++i) {
      if (p[i].revents == 0) continue;
      int from = i == 0 ? client : server, to = i == 0 ? server : client;
      ssize_t n = recv(from, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        open = false;  // EOF or reset on one side ends the relay for both
        break;
      }
      if (i == 0) {
        if (corrupt_.exchange(false))
          for (ssize_t k = 0; k < n && k < 4; ++k) buf[k] ^= 0xFF;
        client_bytes_.fetch_add(static_cast<uint64_t>(n));
      }
      if (!write_all(to, buf, static_cast<size_t>(n))) open = false;
    }
  }
  if (cut_.load()) {
    linger hard{1, 0};  // close with RST, not an orderly FIN
    setsockopt(client, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    setsockopt(server, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  }
  close(client);
  close(server);
}

}  // namespace tcpx::test
