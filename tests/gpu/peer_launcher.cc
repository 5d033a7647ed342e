#include "peer_launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>

namespace tcpx::gputest {

bool PeerLauncher::start(const std::string& path, const std::vector<std::string>& args) {
  // A peer that died must fail the test, not kill it with SIGPIPE on write.
  std::signal(SIGPIPE, SIG_IGN);
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return false;
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    return false;
  }
  std::vector<std::string> argv_s = {path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  to_child_ = in_pipe[1];
  from_child_ = out_pipe[0];
  return pid_ > 0;
}

std::string PeerLauncher::read_line(int timeout_ms, bool* eof) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || from_child_ < 0) return "";
    pollfd p{from_child_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char tmp[4096];
    ssize_t n = read(from_child_, tmp, sizeof tmp);
    if (n <= 0) {
      *eof = true;
      return "";
    }
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

std::string PeerLauncher::expect(const std::string& prefix, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "<timeout waiting for '" + prefix + "'>";
    bool eof = false;
    std::string line = read_line(static_cast<int>(left.count()), &eof);
    if (eof) return "<peer exited before '" + prefix + "'>";
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
    // The peer reports failures as "ERROR ..." lines: surface them at once.
    if (line.rfind("ERROR ", 0) == 0) return "<peer: " + line + ">";
  }
}

void PeerLauncher::write_line(const std::string& s) {
  if (to_child_ < 0) return;
  std::string l = s + "\n";
  (void)!write(to_child_, l.data(), l.size());
}

void PeerLauncher::kill_now() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
  to_child_ = from_child_ = -1;
}

}  // namespace tcpx::gputest
