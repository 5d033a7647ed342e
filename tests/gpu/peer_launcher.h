// PeerLauncher: runs engine_gpu_peer as the second process and talks to it in
// lines over its stdin/stdout. Like tests/engine's PeerProcess (which always
// starts engine_peer), with the binary as a parameter. Every read has a
// deadline; the child is killed and reaped on destruction.
#ifndef TCPX_TESTS_GPU_PEER_LAUNCHER_H_
#define TCPX_TESTS_GPU_PEER_LAUNCHER_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace tcpx::gputest {

class PeerLauncher {
 public:
  PeerLauncher() = default;
  ~PeerLauncher() { kill_now(); }
  PeerLauncher(const PeerLauncher&) = delete;
  PeerLauncher& operator=(const PeerLauncher&) = delete;

  // Starts `path` with args; the child inherits this process's environment.
  bool start(const std::string& path, const std::vector<std::string>& args);
  // Reads lines until one starts with prefix and returns the rest of it, or
  // a "<...>" text saying why none came.
  std::string expect(const std::string& prefix, int timeout_ms = 60000);
  void write_line(const std::string& s);
  void kill_now();

 private:
  std::string read_line(int timeout_ms, bool* eof);

  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buf_;
};

}  // namespace tcpx::gputest

#endif  // TCPX_TESTS_GPU_PEER_LAUNCHER_H_
