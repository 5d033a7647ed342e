#include "harness/child_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

extern char** environ;

namespace tcpx::conformance {

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    kill_and_reap();
    pid_ = o.pid_;
    o.pid_ = -1;
  }
  return *this;
}

Status ChildProcess::spawn_self(const std::vector<std::string>& args,
                                const std::vector<std::pair<std::string, std::string>>& env,
                                ChildProcess* out) {
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return TransportError(std::string("readlink /proc/self/exe: ") + std::strerror(errno));
  exe[n] = '\0';

  // Everything the child needs is built before fork: between fork and exec a
  // multi-threaded parent's child may only make async-signal-safe calls.
  std::vector<std::string> argv_s{exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    bool overridden = false;
    for (const auto& [k, v] : env)
      if (kv.compare(0, k.size() + 1, k + "=") == 0) overridden = true;
    if (!overridden) env_s.push_back(std::move(kv));
  }
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) return TransportError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // If the test process dies (crash, ctest timeout) the child goes too.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  *out = ChildProcess();
  out->pid_ = pid;
  return Status::Ok();
}

Status ChildProcess::wait(int timeout_ms, int* exit_code) {
  if (pid_ <= 0) return InvalidArgument("wait: no child");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return Status::Ok();
    }
    if (r < 0 && errno != EINTR) return TransportError(std::string("waitpid: ") + std::strerror(errno));
    if (std::chrono::steady_clock::now() >= deadline)
      return TimedOut("child " + std::to_string(pid_) + " still running");
    // No child-exit fd to block on without disturbing gtest's SIGCHLD
    // handling, so poll with a growing pause.
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

void ChildProcess::kill_and_reap() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

}  // namespace tcpx::conformance
