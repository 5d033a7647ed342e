#include "handshake_flood.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "engine/handshake.h"
#include "engine/wire.h"

namespace tcpx::test {
namespace {

using Clock = std::chrono::steady_clock;

enum class Kind { kSilent, kGarbage, kPartial, kSlowloris };

const char* name_of(Kind k) {
  switch (k) {
    case Kind::kSilent: return "silent";
    case Kind::kGarbage: return "garbage";
    case Kind::kPartial: return "partial";
    case Kind::kSlowloris: return "slowloris";
  }
  return "?";
}

// What each kind sends once connected (slowloris: one byte at a time).
std::vector<uint8_t> bytes_for(Kind k) {
  using namespace tcpx::engine;
  std::vector<uint8_t> out;
  switch (k) {
    case Kind::kSilent: break;
    case Kind::kGarbage: {
      const char junk[] = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
      out.assign(junk, junk + sizeof junk - 1);
      break;
    }
    case Kind::kPartial: {
      // A well-formed header announcing the largest payload a frame may have.
      std::vector<uint8_t> payload(kMaxPayloadBytes);
      (void)append_frame(FrameType::kHello, 0, payload, &out);
      out.resize(kFrameHeaderBytes);
      break;
    }
    case Kind::kSlowloris: {
      HelloPayload h;
      h.protocol_version = kProtocolVersion;
      h.self.ip = "127.0.0.1";
      h.channels = 2;
      h.handles.resize(2);
      (void)append_frame(FrameType::kHello, 0, encode_hello(h), &out);
      break;
    }
  }
  return out;
}

// How long after the start each kind begins: slow and oversized peers first,
// so some of them get a handshake slot before the silent ones fill the cap.
int start_delay_ms(Kind k) {
  switch (k) {
    case Kind::kSlowloris: return 0;
    case Kind::kPartial: return 50;
    case Kind::kGarbage: return 100;
    case Kind::kSilent: return 300;
  }
  return 0;
}

bool refused_as_busy(const std::string& got) { return got.find("too many handshakes in progress") != std::string::npos; }

struct Conn {
  int fd = -1;
  bool connected = false;
  bool closed = false;  // by the target
  Clock::time_point since;
  size_t sent = 0;
  std::string got;  // the first bytes the target sent (a REJECT, if any)
};

long ms_between(Clock::time_point a, Clock::time_point b) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count());
}

// Runs one kind; returns its RESULT line. Connections the target never
// closed are left open in *leftover (the caller closes them later).
std::string attack(Kind kind, uint16_t port, int n, int give_up_ms, std::vector<int>* leftover) {
  const std::vector<uint8_t> bytes = bytes_for(kind);
  std::this_thread::sleep_for(std::chrono::milliseconds(start_delay_ms(kind)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  auto start = Clock::now();
  std::vector<Conn> conns;
  for (int i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) break;  // out of descriptors: report what was opened
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
      close(fd);
      continue;
    }
    conns.push_back({fd, false, false, Clock::now(), 0, {}});
  }
  int connected = 0, closed = 0, busy = 0;
  long max_life_ms = 0, min_served_life_ms = -1;
  size_t max_sent = 0;
  auto finish = [&](Conn& c) {
    long life = ms_between(c.since, Clock::now());
    if (c.connected) max_life_ms = std::max(max_life_ms, life);
    if (refused_as_busy(c.got)) ++busy;
    else if (c.connected && (min_served_life_ms < 0 || life < min_served_life_ms)) min_served_life_ms = life;
    c.closed = true;
    ++closed;
    close(c.fd);
  };
  auto next_drip = Clock::now();
  std::vector<pollfd> fds;
  std::vector<Conn*> who;
  char sink[4096];
  while (closed < static_cast<int>(conns.size()) && ms_between(start, Clock::now()) < give_up_ms) {
    fds.clear();
    who.clear();
    for (auto& c : conns) {
      if (c.closed) continue;
      fds.push_back({c.fd, static_cast<short>(c.connected ? POLLIN : POLLOUT), 0});
      who.push_back(&c);
    }
    poll(fds.data(), fds.size(), 20);
    for (size_t i = 0; i < fds.size(); ++i) {
      Conn& c = *who[i];
      if (fds[i].revents == 0) continue;
      if (!c.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) { finish(c); continue; }
        c.connected = true;
        ++connected;
        c.since = Clock::now();
        if (kind == Kind::kGarbage || kind == Kind::kPartial) {
          ssize_t w = send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
          if (w > 0) c.sent = static_cast<size_t>(w);
        }
        continue;
      }
      ssize_t r;
      while ((r = recv(c.fd, sink, sizeof sink, 0)) > 0)
        if (c.got.size() < 1024) c.got.append(sink, static_cast<size_t>(r));
      if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) finish(c);
    }
    if (kind == Kind::kSlowloris && Clock::now() >= next_drip) {
      next_drip += std::chrono::milliseconds(100);
      for (auto& c : conns) {
        if (c.closed || !c.connected || c.sent >= bytes.size()) continue;
        if (send(c.fd, &bytes[c.sent], 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) ++c.sent;
      }
    }
  }
  int still_open = 0;
  for (auto& c : conns) {
    max_sent = std::max(max_sent, c.sent);
    if (!c.closed) {
      ++still_open;
      leftover->push_back(c.fd);
    }
  }
  return "RESULT " + std::string(name_of(kind)) + " opened=" + std::to_string(conns.size()) +
         " connected=" + std::to_string(connected) + " closed=" + std::to_string(closed) +
         " busy=" + std::to_string(busy) + " open=" + std::to_string(still_open) +
         " min_served_ms=" + std::to_string(min_served_life_ms) + " max_close_ms=" + std::to_string(max_life_ms) +
         " sent=" + std::to_string(max_sent);
}

}  // namespace

int run_handshake_flood(uint16_t port, const FloodCounts& counts, int give_up_ms) {
  if (port == 0) return 2;
  // Every connection is a descriptor here: the soft limit up to the hard one
  // (the test scales the counts to the hard limit).
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  struct Job {
    Kind kind;
    int n;
    std::string result;
    std::vector<int> leftover;
  };
  std::vector<Job> jobs = {{Kind::kSilent, counts.silent, "", {}},
                           {Kind::kGarbage, counts.garbage, "", {}},
                           {Kind::kPartial, counts.partial, "", {}},
                           {Kind::kSlowloris, counts.slowloris, "", {}}};
  std::vector<std::thread> threads;
  for (auto& j : jobs)
    threads.emplace_back([&j, port, give_up_ms] { j.result = attack(j.kind, port, j.n, give_up_ms, &j.leftover); });
  for (auto& t : threads) t.join();
  for (auto& j : jobs) std::printf("%s\n", j.result.c_str());
  // Connections still open here are held until the test has looked at the
  // target (a connection the target's kernel dropped from a full backlog
  // stays open on this side only: the target holds nothing for it).
  std::printf("HOLDING\n");
  std::fflush(stdout);
  pollfd in{0, POLLIN, 0};
  poll(&in, 1, 20000);
  for (auto& j : jobs)
    for (int fd : j.leftover) close(fd);
  std::printf("DONE\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace tcpx::test
