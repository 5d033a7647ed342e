#include "support/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

extern char** environ;

namespace tcpx::test {
namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// The inherited environment with `extra` added; an extra entry replaces an
// inherited one of the same name (getenv would find the first).
std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
  auto key = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) { return key(x) == key(kv); });
    if (!replaced) out.push_back(std::move(kv));
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

// Both ends close-on-exec: the child gets its end by dup2 only, so a third
// process started later never holds a pipe open by accident.
struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  int take(int i) {
    int f = fd[i];
    fd[i] = -1;
    return f;
  }
};

Status open_stream(ChildStream mode, Pipe* p) {
  if (mode == ChildStream::kPipe && ::pipe2(p->fd, O_CLOEXEC) != 0) return TransportError(errno_text("pipe2"));
  return Status::Ok();
}

// In the child, between fork and exec: async-signal-safe calls only.
void wire_stream(ChildStream mode, int target, int pipe_end, int null_fd) {
  if (mode == ChildStream::kPipe) ::dup2(pipe_end, target);
  if (mode == ChildStream::kNull) ::dup2(null_fd, target);
}

}  // namespace

std::string ExitStatus::to_string() const {
  return exited ? "exit " + std::to_string(code) : "signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

std::string self_exe() { return "/proc/self/exe"; }

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(o.pid_), to_child_(o.to_child_), from_child_(o.from_child_), pending_(std::move(o.pending_)) {
  o.pid_ = o.to_child_ = o.from_child_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    kill_and_reap();
    pid_ = o.pid_;
    to_child_ = o.to_child_;
    from_child_ = o.from_child_;
    pending_ = std::move(o.pending_);
    o.pid_ = o.to_child_ = o.from_child_ = -1;
  }
  return *this;
}

Status ChildProcess::spawn(const std::vector<std::string>& argv, const ChildOptions& opts) {
  if (argv.empty()) return InvalidArgument("spawn: empty argv");
  return start(&argv, nullptr, opts);
}

Status ChildProcess::spawn_function(const std::function<int()>& body, const ChildOptions& opts) {
  return start(nullptr, &body, opts);
}

Status ChildProcess::start(const std::vector<std::string>* argv_in, const std::function<int()>* body,
                           const ChildOptions& opts) {
  kill_and_reap();
  // A child that died must fail the test, not kill it with SIGPIPE on write.
  if (opts.stdin_to == ChildStream::kPipe) ::signal(SIGPIPE, SIG_IGN);
  if (opts.stderr_to == ChildStream::kPipe && opts.stdout_to != ChildStream::kPipe)
    return InvalidArgument("spawn: a piped stderr shares the stdout pipe, so stdout must be piped too");
  Pipe in, out;
  TCPX_RETURN_IF_ERROR(open_stream(opts.stdin_to, &in));
  TCPX_RETURN_IF_ERROR(open_stream(opts.stdout_to, &out));
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return TransportError(errno_text("open /dev/null"));

  // Everything the child needs is built before fork: the child of a
  // multi-threaded parent may only make async-signal-safe calls before exec.
  std::vector<std::string> argv_s, env_s;
  std::vector<char*> argv, envp;
  if (argv_in != nullptr) {
    argv_s = *argv_in;
    env_s = merged_env(opts.env);
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(null_fd);
    return TransportError(errno_text("fork"));
  }
  if (pid == 0) {
    // If the test process dies (crash, ctest timeout) the child goes too.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    wire_stream(opts.stdin_to, 0, in.fd[0], null_fd);
    wire_stream(opts.stdout_to, 1, out.fd[1], null_fd);
    wire_stream(opts.stderr_to, 2, out.fd[1], null_fd);
    if (body != nullptr) {
      for (const auto& kv : opts.env) ::putenv(const_cast<char*>(kv.c_str()));
      ::_exit((*body)());
    }
    if (opts.search_path) ::execvpe(argv[0], argv.data(), envp.data());
    else ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(null_fd);
  pid_ = pid;
  if (opts.stdin_to == ChildStream::kPipe) to_child_ = in.take(1);
  if (opts.stdout_to == ChildStream::kPipe) from_child_ = out.take(0);
  return Status::Ok();
}

Status ChildProcess::write_line(const std::string& line) {
  if (to_child_ < 0) return InvalidArgument("write_line: the child's stdin is not piped");
  std::string s = line + "\n";
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(to_child_, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) return PeerClosed("child " + std::to_string(pid_) + " closed its stdin");
    if (n <= 0) return TransportError(errno_text("write to child"));
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status ChildProcess::read_line(std::string* line, int timeout_ms) {
  if (from_child_ < 0) return InvalidArgument("read_line: the child's stdout is not piped");
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    size_t nl = pending_.find('\n');
    if (nl != std::string::npos) {
      *line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return Status::Ok();
    }
    pollfd p{from_child_, POLLIN, 0};
    int r = ::poll(&p, 1, ms_left(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return TransportError(errno_text("poll"));
    if (r == 0) return TimedOut("no line from child " + std::to_string(pid_) + " in " + std::to_string(timeout_ms) + " ms");
    char buf[4096];
    ssize_t n = ::read(from_child_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return TransportError(errno_text("read from child"));
    if (n == 0) return PeerClosed("child " + std::to_string(pid_) + " closed its stdout (exited?)");
    pending_.append(buf, static_cast<size_t>(n));
  }
}

Status ChildProcess::expect_line(const std::string& prefix, std::string* line, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string l;
  for (;;) {
    Status s = read_line(&l, ms_left(deadline));
    if (!s.ok()) return Status(s.code(), s.message() + " (waiting for '" + prefix + "')");
    if (l.compare(0, prefix.size(), prefix) == 0) {
      if (line != nullptr) *line = l;
      return Status::Ok();
    }
    if (l.rfind("ERROR ", 0) == 0) return ProtocolError("child said '" + l + "' (waiting for '" + prefix + "')");
  }
}

std::string ChildProcess::expect(const std::string& prefix, int timeout_ms) {
  std::string line;
  Status s = expect_line(prefix, &line, timeout_ms);
  if (!s.ok()) return "<" + s.to_string() + ">";
  return line.substr(prefix.size());
}

Status ChildProcess::send_signal(int signo) {
  if (pid_ <= 0) return NotFound("no child");
  if (::kill(pid_, signo) != 0) return TransportError(errno_text("kill"));
  return Status::Ok();
}

Status ChildProcess::stop() { return send_signal(SIGSTOP); }
Status ChildProcess::resume() { return send_signal(SIGCONT); }

Status ChildProcess::wait(int timeout_ms, ExitStatus* out) {
  if (pid_ <= 0) return NotFound("wait: no child");
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;  // the pipes stay open: what it wrote can still be read
      out->exited = WIFEXITED(st);
      out->code = out->exited ? WEXITSTATUS(st) : 0;
      out->signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
      return Status::Ok();
    }
    if (r < 0 && errno != EINTR) return TransportError(errno_text("waitpid"));
    if (Clock::now() >= deadline) return TimedOut("child " + std::to_string(pid_) + " still running");
    // No child-exit fd to block on without taking SIGCHLD from the test
    // framework, so poll with a growing pause.
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

int ChildProcess::wait_exit(int timeout_ms) {
  ExitStatus st;
  if (wait(timeout_ms, &st).ok()) return st.shell_code();
  kill_and_reap();
  return -1;
}

void ChildProcess::kill_and_reap() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);  // a stopped child dies too: SIGKILL needs no SIGCONT
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  close_pipes();
}

void ChildProcess::close_pipes() {
  if (to_child_ >= 0) ::close(to_child_);
  if (from_child_ >= 0) ::close(from_child_);
  to_child_ = from_child_ = -1;
  pending_.clear();
}

}  // namespace tcpx::test
