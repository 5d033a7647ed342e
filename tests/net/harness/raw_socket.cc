#include "harness/raw_socket.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

namespace tcpx::conformance {
namespace {

std::set<uint64_t> own_socket_inodes() {
  std::set<uint64_t> out;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char link[320];
    char target[128];
    std::snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    unsigned long long inode = 0;
    if (std::sscanf(target, "socket:[%llu]", &inode) == 1) out.insert(inode);
  }
  closedir(d);
  return out;
}

// /proc/net/tcp rows: "sl local rem st ... inode"; addresses are hex in
// host byte order per 32-bit word, ports hex.
void read_table(const char* path, bool v6, const std::set<uint64_t>& mine, std::vector<ListeningSocket>* out) {
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return;
  char line[512];
  (void)std::fgets(line, sizeof(line), f);  // header
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    char local[64];
    unsigned state = 0;
    unsigned long long inode = 0;
    int n = std::sscanf(line, " %*d: %63[0-9A-Fa-f:] %*s %x %*s %*s %*s %*s %*s %llu", local, &state, &inode);
    if (n != 3 || state != 0x0A || mine.count(inode) == 0) continue;  // 0x0A: LISTEN
    char* colon = std::strchr(local, ':');
    if (colon == nullptr) continue;
    *colon = '\0';
    unsigned port = static_cast<unsigned>(std::strtoul(colon + 1, nullptr, 16));
    ListeningSocket s;
    s.inode = inode;
    if (!v6) {
      auto* a = reinterpret_cast<sockaddr_in*>(&s.addr);
      a->sin_family = AF_INET;
      a->sin_port = htons(static_cast<uint16_t>(port));
      a->sin_addr.s_addr = static_cast<uint32_t>(std::strtoul(local, nullptr, 16));
      if (a->sin_addr.s_addr == INADDR_ANY) a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      s.len = sizeof(sockaddr_in);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&s.addr);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(static_cast<uint16_t>(port));
      for (int w = 0; w < 4; ++w) {
        char word[9] = {};
        std::memcpy(word, local + 8 * w, 8);
        uint32_t v = static_cast<uint32_t>(std::strtoul(word, nullptr, 16));
        std::memcpy(&a->sin6_addr.s6_addr[4 * w], &v, 4);
      }
      if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)) a->sin6_addr = in6addr_loopback;
      s.len = sizeof(sockaddr_in6);
    }
    out->push_back(s);
  }
  std::fclose(f);
}

}  // namespace

std::vector<ListeningSocket> own_listening_sockets() {
  std::set<uint64_t> mine = own_socket_inodes();
  std::vector<ListeningSocket> out;
  read_table("/proc/net/tcp", false, mine, &out);
  read_table("/proc/net/tcp6", true, mine, &out);
  return out;
}

std::vector<ListeningSocket> new_listening_sockets(const std::vector<ListeningSocket>& before,
                                                   const std::vector<ListeningSocket>& after) {
  std::vector<ListeningSocket> out;
  for (const auto& a : after) {
    bool old = false;
    for (const auto& b : before) old = old || b.inode == a.inode;
    if (!old) out.push_back(a);
  }
  return out;
}

Status RawClient::connect(const ListeningSocket& to) {
  close();
  fd_ = ::socket(to.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return TransportError(std::string("socket: ") + std::strerror(errno));
  timeval tv{5, 0};  // never hang a test on a plugin that stopped reading
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to.addr), to.len) != 0)
    return TransportError(std::string("connect to the plugin's listener: ") + std::strerror(errno));
  return Status::Ok();
}

Status RawClient::write(const void* bytes, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::send(fd_, static_cast<const char*>(bytes) + off, n - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<size_t>(w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      return PeerClosed(std::string("raw write: ") + std::strerror(errno));
    }
  }
  return Status::Ok();
}

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace tcpx::conformance
