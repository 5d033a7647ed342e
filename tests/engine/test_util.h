// Helpers shared by the engine tests and their peer process: deterministic
// data patterns, a loopback endpoint factory, and PeerProcess (a fork+exec'd
// engine_peer talking to the test over stdin/stdout lines; always killed and
// reaped, every read bounded by a deadline).
#ifndef TCPX_TESTS_ENGINE_TEST_UTIL_H_
#define TCPX_TESTS_ENGINE_TEST_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tcpx/endpoint.h"

namespace tcpx::test {

// Bytes that depend on (seed, absolute index): any slice can be checked alone.
void fill_pattern(void* p, size_t n, uint64_t seed, size_t start = 0);
// Index of the first mismatch, or SIZE_MAX.
size_t check_pattern(const void* p, size_t n, uint64_t seed, size_t start = 0);

// Milliseconds since t (steady clock): for "fails within N ms" checks.
inline long ms_since(std::chrono::steady_clock::time_point t) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count());
}

// Size of transfer i of the mixed workload: mostly small, some medium, a few
// multi-chunk ones, zero included.
size_t mixed_size(uint64_t seed, size_t i);

// Which plugin carries the data, and how receives land:
//   kDirect    the built-in plugin, host receives straight into the buffer;
//   kBounce    the built-in plugin with TCPX_P2P_TCP_BOUNCE_HOST=1: every
//              receive through the bounce buffer + CPU unpack, as on TCPX;
//   kHostOnly  tests/plugins/host_only: a plugin shaped like aws-ofi-nccl
//              (device type HOST, no unpack, irecvConsumed and getDeviceMr
//              NULL) over the built-in one.
enum class PluginMode { kDirect, kBounce, kHostOnly };
const char* to_string(PluginMode m);

// Loopback-only settings for both processes (plugin on lo, control on
// 127.0.0.1) and the plugin mode's variables. Call before the first endpoint
// of the process: children inherit it. TCPX_TEST_LISTEN_ADDR, when set,
// replaces 127.0.0.1 in loopback_config() (a peer inside a test's network
// namespace listens on its veth).
void set_test_env(PluginMode mode);
// "" when `mode` can run in this process, else why not: the host-only plugin
// wraps the built-in one, and under strict TCPX emulation the built-in one is
// initialised once per process, either directly or through the wrapper. ctest
// runs each test in a process of its own; this matters when a test program
// runs several modes in one process.
std::string plugin_mode_conflict(PluginMode mode);
inline void set_test_env(bool bounce) { set_test_env(bounce ? PluginMode::kBounce : PluginMode::kDirect); }
Config loopback_config();
Status make_endpoint(std::unique_ptr<Endpoint>* out, int gpu = 0, Config cfg = loopback_config());

class PeerProcess {
 public:
  PeerProcess() = default;
  ~PeerProcess() { kill_now(); }
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  // Starts engine_peer with the role and args; extra_env entries "K=V" are
  // added to the inherited environment (replacing inherited ones).
  bool start(const std::string& role, const std::vector<std::string>& args = {},
             const std::vector<std::string>& extra_env = {});
  // A command that execs the peer in its place, e.g. {"ip", "netns", "exec",
  // NAME}: the peer keeps the pid, so kill_now() still reaches it.
  void set_launcher(std::vector<std::string> argv) { launcher_ = std::move(argv); }
  // One line from the peer's stdout, without the newline; "" on timeout/EOF.
  std::string read_line(int timeout_ms = 20000);
  // Reads lines until one starts with prefix; returns the rest of it.
  std::string expect(const std::string& prefix, int timeout_ms = 20000);
  void write_line(const std::string& s);
  // SIGKILL + reap. Safe to call twice.
  void kill_now();
  // Waits for a normal exit (after "quit"); kills at the deadline. Exit code
  // or -1.
  int wait_exit(int timeout_ms = 10000);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buf_;
  std::vector<std::string> launcher_;
};

// Hex encoding for FifoItems crossing the stdin/stdout pipe.
std::string to_hex(const void* p, size_t n);
bool from_hex(const std::string& s, void* p, size_t n);

}  // namespace tcpx::test

#endif  // TCPX_TESTS_ENGINE_TEST_UTIL_H_
