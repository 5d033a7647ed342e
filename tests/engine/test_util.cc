#include "test_util.h"

#include <dlfcn.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "net/transport.h"

extern char** environ;

namespace tcpx::test {

// Word w of the pattern; byte i is byte (i % 8) of word (i / 8).
static inline uint64_t word_at(uint64_t seed, size_t w) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + w * 0xbf58476d1ce4e5b9ull + 1;
  z ^= z >> 31;
  z *= 0x94d049bb133111ebull;
  z ^= z >> 29;
  return z;
}

static inline uint8_t byte_at(uint64_t seed, size_t i) {
  return static_cast<uint8_t>(word_at(seed, i >> 3) >> (8 * (i & 7)));
}

void fill_pattern(void* p, size_t n, uint64_t seed, size_t start) {
  auto* b = static_cast<uint8_t*>(p);
  size_t i = 0;
  for (; i < n && ((start + i) & 7) != 0; ++i) b[i] = byte_at(seed, start + i);
  for (; i + 8 <= n; i += 8) {
    uint64_t w = word_at(seed, (start + i) >> 3);
    std::memcpy(b + i, &w, 8);  // little-endian host: byte k = w >> 8k
  }
  for (; i < n; ++i) b[i] = byte_at(seed, start + i);
}

size_t check_pattern(const void* p, size_t n, uint64_t seed, size_t start) {
  const auto* b = static_cast<const uint8_t*>(p);
  size_t i = 0;
  for (; i < n && ((start + i) & 7) != 0; ++i)
    if (b[i] != byte_at(seed, start + i)) return i;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = word_at(seed, (start + i) >> 3), got;
    std::memcpy(&got, b + i, 8);
    if (got != w)
      for (size_t k = 0; k < 8; ++k)
        if (b[i + k] != byte_at(seed, start + i + k)) return i + k;
  }
  for (; i < n; ++i)
    if (b[i] != byte_at(seed, start + i)) return i;
  return SIZE_MAX;
}

size_t mixed_size(uint64_t seed, size_t i) {
  uint64_t r = word_at(seed ^ 0x5555, i);
  switch (r % 100) {
    case 0: return 0;
    case 1: case 2: return 1 + (r >> 8) % (3u << 20);   // up to 3 MiB: several chunks
    default:
      if (r % 100 < 28) return 1 + (r >> 8) % (256u << 10);
      return 1 + (r >> 8) % (16u << 10);
  }
}

const char* to_string(PluginMode m) {
  switch (m) {
    case PluginMode::kDirect: return "direct";
    case PluginMode::kBounce: return "bounce";
    case PluginMode::kHostOnly: return "host_only_plugin";
  }
  return "?";
}

std::string plugin_mode_conflict(PluginMode mode) {
  // RTLD_NOLOAD: only asks whether the library is already in the process.
  std::string other = mode == PluginMode::kHostOnly ? net::Transport::builtin_plugin_path()
                                                    : std::string(TCPX_TEST_HOST_ONLY_PLUGIN);
  void* dl = dlopen(other.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (dl == nullptr) return "";
  dlclose(dl);
  return std::string("mode ") + to_string(mode) + " cannot run in this process: " + other +
         " was loaded by an earlier test, and the strict plugin is initialised once per process (run each "
         "test in its own process, as ctest does)";
}

void set_test_env(PluginMode mode) {
  setenv("TCPX_P2P_TCP_IFNAME", "lo", 1);
  setenv("TCPX_P2P_TCP_FAMILY", "4", 1);
  if (mode == PluginMode::kBounce) setenv("TCPX_P2P_TCP_BOUNCE_HOST", "1", 1);
  else unsetenv("TCPX_P2P_TCP_BOUNCE_HOST");
  if (mode == PluginMode::kHostOnly) setenv("TCPX_NET_PLUGIN", TCPX_TEST_HOST_ONLY_PLUGIN, 1);
  else unsetenv("TCPX_NET_PLUGIN");
}

Config loopback_config() {
  // TCPX_* variables still apply (benchmarks sweep chunk size and channels
  // through them); only the addresses are pinned to loopback.
  Config c;
  if (!Config::from_env(&c).ok()) c = Config();
  c.listen_addr = "127.0.0.1";
  // A peer started inside a test's network namespace listens on its veth.
  if (const char* a = std::getenv("TCPX_TEST_LISTEN_ADDR")) c.listen_addr = a;
  c.connect_timeout_ms = 5000;
  c.peer_timeout_ms = 3000;
  return c;
}

Status make_endpoint(std::unique_ptr<Endpoint>* out, int gpu, Config cfg) {
  return Endpoint::create(gpu, cfg, out);
}

bool PeerProcess::start(const std::string& role, const std::vector<std::string>& args,
                        const std::vector<std::string>& extra_env) {
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) return false;
  std::vector<std::string> argv_s = launcher_;
  argv_s.push_back(ENGINE_PEER_PATH);
  argv_s.push_back(role);
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  // extra_env replaces inherited variables of the same name (getenv would
  // find an inherited entry first).
  auto key = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    bool overridden = false;
    for (auto& x : extra_env) overridden = overridden || key(x) == key(kv);
    if (!overridden) env_s.push_back(std::move(kv));
  }
  env_s.insert(env_s.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    if (launcher_.empty()) execve(argv[0], argv.data(), envp.data());
    else execvpe(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  to_child_ = in_pipe[1];
  from_child_ = out_pipe[0];
  return true;
}

std::string PeerProcess::read_line(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0 || from_child_ < 0) return "";
    pollfd p{from_child_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char tmp[4096];
    ssize_t n = read(from_child_, tmp, sizeof tmp);
    if (n <= 0) return "";
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

std::string PeerProcess::expect(const std::string& prefix, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return "<timeout waiting for " + prefix + ">";
    std::string line = read_line(static_cast<int>(left));
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
    if (line.empty() && from_child_ >= 0) {
      pollfd p{from_child_, POLLIN, 0};
      if (poll(&p, 1, 0) > 0 && (p.revents & POLLHUP) && buf_.empty()) return "<peer exited before " + prefix + ">";
    }
  }
}

void PeerProcess::write_line(const std::string& s) {
  if (to_child_ < 0) return;
  std::string l = s + "\n";
  (void)!write(to_child_, l.data(), l.size());
}

void PeerProcess::kill_now() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
  to_child_ = from_child_ = -1;
}

int PeerProcess::wait_exit(int timeout_ms) {
  if (pid_ <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      kill_now();
      return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill_now();
  return -1;
}

std::string to_hex(const void* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(d[b[i] >> 4]);
    s.push_back(d[b[i] & 15]);
  }
  return s;
}

bool from_hex(const std::string& s, void* p, size_t n) {
  if (s.size() != 2 * n) return false;
  auto* b = static_cast<uint8_t*>(p);
  auto v = [](char c) { return c >= 'a' ? c - 'a' + 10 : c - '0'; };
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(v(s[2 * i]) << 4 | v(s[2 * i + 1]));
  return true;
}

}  // namespace tcpx::test
