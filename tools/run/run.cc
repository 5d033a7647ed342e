// tcpx-run: the README's one-command demo. Forks a server and a client on
// loopback, connects them through the metadata string, runs a sweep of
// two-sided transfers (4 KiB .. 64 MiB) with the contents checked on the
// receiving side, and prints per size GB/s plus the path the data took.
// Exit status 0 only if every transfer arrived intact.
//
//   tcpx-run [--quick] [--channels C]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tcpx/endpoint.h"

namespace {

using Clock = std::chrono::steady_clock;
using tcpx::Status;
constexpr int kWaitMs = 60000;
constexpr int kSendWindow = 4;

struct Step {
  size_t size;
  int iters;
};

std::vector<Step> sweep(bool quick) {
  if (quick) return {{4 << 10, 16}, {64 << 10, 16}, {1 << 20, 8}, {16 << 20, 4}, {64 << 20, 2}};
  std::vector<Step> s;
  for (size_t z = 4 << 10; z <= (64u << 20); z *= 4)
    s.push_back({z, static_cast<int>(std::clamp<size_t>((256u << 20) / z, 4, 4096))});
  return s;
}

uint8_t pattern(uint32_t seed, size_t j) { return static_cast<uint8_t>(j * 131 + seed * 7 + (j >> 12)); }
void fill(uint8_t* p, size_t n, uint32_t seed) {
  for (size_t j = 0; j < n; ++j) p[j] = pattern(seed, j);
}
// Full check, or 257 spread samples (first and last byte included).
bool check(const uint8_t* p, size_t n, uint32_t seed, bool full) {
  if (full) {
    for (size_t j = 0; j < n; ++j)
      if (p[j] != pattern(seed, j)) return false;
    return true;
  }
  for (size_t k = 0; k <= 256; ++k) {
    size_t j = (n - 1) * k / 256;
    if (p[j] != pattern(seed, j)) return false;
  }
  return true;
}

struct Slots {  // two registered, page-aligned buffers of the largest size
  uint8_t* data[2] = {nullptr, nullptr};
  tcpx::MrId mr[2] = {0, 0};
  Status init(tcpx::Endpoint& ep, size_t n) {
    for (int i = 0; i < 2; ++i) {
      data[i] = static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096));
      if (data[i] == nullptr) return tcpx::Internal("out of memory");
      std::memset(data[i], 0, n);
      TCPX_RETURN_IF_ERROR(ep.reg(data[i], n, &mr[i]));
    }
    return Status::Ok();
  }
  ~Slots() {
    std::free(data[0]);
    std::free(data[1]);
  }
};

Status make_endpoint(int channels, std::unique_ptr<tcpx::Endpoint>* ep) {
  tcpx::Config c;
  TCPX_RETURN_IF_ERROR(tcpx::Config::from_env(&c));
  if (c.listen_addr.empty()) c.listen_addr = "127.0.0.1";  // this demo stays on loopback
  if (channels > 0) c.channels_per_peer = channels;
  return tcpx::Endpoint::create(0, c, ep);
}

size_t max_size(const std::vector<Step>& steps) {
  size_t m = 0;
  for (auto& s : steps) m = std::max(m, s.size);
  return m;
}

// Receiver: iteration i lands in slot i%2 with seed (2*step + i%2); two
// receives in flight, each checked before its slot is reused.
int server(int meta_fd, bool quick, int channels) {
  std::unique_ptr<tcpx::Endpoint> ep;
  Status s = make_endpoint(channels, &ep);
  std::string meta = s.ok() ? ep->metadata_string() : "";
  meta += "\n";
  if (write(meta_fd, meta.data(), meta.size()) != static_cast<ssize_t>(meta.size())) return 1;
  close(meta_fd);
  if (!s.ok()) return std::fprintf(stderr, "tcpx-run server: %s\n", s.to_string().c_str()), 1;
  tcpx::ConnId c;
  tcpx::PeerInfo peer;
  s = ep->accept(&c, &peer, 30000);
  auto steps = sweep(quick);
  Slots slots;
  if (s.ok()) s = slots.init(*ep, max_size(steps));
  for (size_t k = 0; k < steps.size() && s.ok(); ++k) {
    const Step& st = steps[k];
    std::deque<tcpx::XferId> live;
    int posted = 0, done = 0;
    bool intact = true;
    while (done < st.iters && s.ok()) {
      while (posted < st.iters && live.size() < 2) {
        tcpx::XferId id;
        s = ep->recv_async(c, slots.mr[posted % 2], slots.data[posted % 2], st.size, &id);
        if (!s.ok()) break;
        live.push_back(id);
        ++posted;
      }
      if (!s.ok()) break;
      s = ep->wait(live.front(), kWaitMs);
      live.pop_front();
      if (!s.ok()) break;
      bool full = done == 0 || done == st.iters - 1;
      intact = intact && check(slots.data[done % 2], st.size, static_cast<uint32_t>(2 * k + done % 2), full);
      ++done;
    }
    std::string verdict = s.ok() ? (intact ? "OK" : "BAD") : "ERR " + s.to_string();
    Status m = ep->send_message(c, verdict.data(), verdict.size());
    if (s.ok()) s = m;
  }
  if (!s.ok()) std::fprintf(stderr, "tcpx-run server: %s\n", s.to_string().c_str());
  // How the receives really landed, for the client to print.
  if (s.ok()) {
    std::string path = ep->describe_path();
    (void)ep->send_message(c, path.data(), path.size());
  }
  // Wait for the client to finish reading our verdicts before closing.
  std::vector<uint8_t> bye;
  (void)ep->recv_message(c, &bye, 10000);  // the BYE, or its absence: the verdicts are sent
  return s.ok() ? 0 : 1;
}

int client(const std::string& meta, bool quick, int channels) {
  std::unique_ptr<tcpx::Endpoint> ep;
  Status s = make_endpoint(channels, &ep);
  tcpx::PeerInfo peer;
  tcpx::ConnId c = 0;
  if (s.ok()) s = tcpx::Endpoint::parse_metadata_string(meta, &peer);
  if (s.ok()) s = ep->connect(peer, &c);
  if (!s.ok()) return std::fprintf(stderr, "tcpx-run client: %s\n", s.to_string().c_str()), 1;
  std::printf("tcpx-run: server %s, client %s\n", meta.c_str(), ep->metadata_string().c_str());
  std::printf("path: %s\n", ep->describe_path().c_str());
  std::printf("%10s %8s %10s %s\n", "size", "iters", "GB/s", "contents");
  auto steps = sweep(quick);
  Slots slots;
  s = slots.init(*ep, max_size(steps));
  uint64_t total = 0;
  bool all_ok = s.ok();
  for (size_t k = 0; k < steps.size() && s.ok(); ++k) {
    const Step& st = steps[k];
    fill(slots.data[0], st.size, static_cast<uint32_t>(2 * k));
    fill(slots.data[1], st.size, static_cast<uint32_t>(2 * k + 1));
    std::deque<tcpx::XferId> live;
    auto t0 = Clock::now();
    for (int i = 0; i < st.iters || !live.empty();) {
      if (i < st.iters && live.size() < kSendWindow) {
        tcpx::XferId id;
        s = ep->send_async(c, slots.mr[i % 2], slots.data[i % 2], st.size, &id);
        if (!s.ok()) break;
        live.push_back(id);
        ++i;
        continue;
      }
      s = ep->wait(live.front(), kWaitMs);
      live.pop_front();
      if (!s.ok()) break;
    }
    std::vector<uint8_t> verdict;
    if (s.ok()) s = ep->recv_message(c, &verdict, kWaitMs);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!s.ok()) break;
    std::string v(verdict.begin(), verdict.end());
    uint64_t bytes = uint64_t{st.size} * static_cast<uint64_t>(st.iters);
    total += bytes;
    all_ok = all_ok && v == "OK";
    std::printf("%10zu %8d %10.3f %s\n", st.size, st.iters, static_cast<double>(bytes) / secs / 1e9,
                v == "OK" ? "verified" : v.c_str());
    std::fflush(stdout);
  }
  if (s.ok()) {
    std::vector<uint8_t> path;
    if (ep->recv_message(c, &path, kWaitMs).ok())
      std::printf("receiver path: %s\n", std::string(path.begin(), path.end()).c_str());
  }
  (void)ep->send_message(c, "BYE", 3);  // best effort: the server stops waiting after 10 s anyway
  if (!s.ok()) std::fprintf(stderr, "tcpx-run client: %s\n", s.to_string().c_str());
  std::printf("total: %llu bytes moved, %s\n", static_cast<unsigned long long>(total),
              s.ok() && all_ok ? "all contents verified" : "FAILED");
  return s.ok() && all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int channels = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--channels" && i + 1 < argc) {
      channels = std::atoi(argv[++i]);
    } else {
      bool help = a == "--help" || a == "-h";
      std::fprintf(help ? stdout : stderr, "usage: tcpx-run [--quick] [--channels C]\n");
      return help ? 0 : 2;
    }
  }
  int fds[2];
  if (pipe(fds) != 0) return std::perror("pipe"), 1;
  std::fflush(stdout);
  pid_t pid = fork();  // before any endpoint thread exists
  if (pid < 0) return std::perror("fork"), 1;
  if (pid == 0) {
    close(fds[0]);
    _exit(server(fds[1], quick, channels));
  }
  close(fds[1]);
  std::string meta;
  char ch;
  while (read(fds[0], &ch, 1) == 1 && ch != '\n') meta += ch;
  close(fds[0]);
  int rc = meta.empty() ? 1 : client(meta, quick, channels);
  // Reap the server within a bound; a hung server is a failure.
  int status = 0;
  auto deadline = Clock::now() + std::chrono::seconds(30);
  pid_t r;
  while ((r = waitpid(pid, &status, WNOHANG)) == 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (r == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    std::fprintf(stderr, "tcpx-run: server did not exit\n");
    return 1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  return rc;
}
