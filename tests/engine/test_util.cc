#include "test_util.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "net/transport.h"

namespace tcpx::test {

size_t mixed_size(uint64_t seed, size_t i) {
  uint64_t r = pattern_word(seed ^ 0x5555, i);
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

Status LocalSide::open(size_t bytes, const Config& cfg) {
  ep.reset();
  buf.assign(bytes, 0);
  TCPX_RETURN_IF_ERROR(make_endpoint(&ep, 0, cfg));
  return ep->reg(buf.data(), buf.size(), &mr);
}

Status start_engine_peer(ChildProcess* peer, const std::string& role, const std::vector<std::string>& args,
                         const std::vector<std::string>& extra_env, const std::vector<std::string>& launcher) {
  std::vector<std::string> argv = launcher;
  argv.push_back(ENGINE_PEER_PATH);
  argv.push_back(role);
  argv.insert(argv.end(), args.begin(), args.end());
  ChildOptions opts = ChildOptions::line_protocol();
  opts.env = extra_env;
  opts.search_path = !launcher.empty();
  return peer->spawn(argv, opts);
}

int raw_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace tcpx::test
