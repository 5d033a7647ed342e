// ChildProcess: the second (or third...) process of a test. Starts a program
// or runs a function in a forked child, optionally with a line protocol on
// its stdin/stdout, and can signal it (kill, stop, continue) and wait for it
// with a deadline. The child dies with the test process (PR_SET_PDEATHSIG) and
// the destructor kills and reaps it: no test leaves an orphan or a zombie
// behind, even when an assertion returns early. (Linux sends the death signal
// when the *thread* that forked ends: start children from a thread that
// outlives them, as a test body or the soak's orchestrator does.)
//
// This is the one launcher of the test tree (tests/support/README.md).
#ifndef TCPX_TESTS_SUPPORT_CHILD_PROCESS_H_
#define TCPX_TESTS_SUPPORT_CHILD_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "tcpx/status.h"

namespace tcpx::test {

// Where a standard stream of the child goes.
enum class ChildStream {
  kInherit,  // this process's own stream (stderr of peers shows in test logs)
  kPipe,     // a pipe to this process: write_line() / read_line(); a piped
             // stderr joins the stdout pipe (2>&1), which must be piped too
  kNull,     // /dev/null
};

struct ChildOptions {
  // "NAME=value" entries added to the inherited environment; each replaces an
  // inherited variable of the same name.
  std::vector<std::string> env;
  ChildStream stdin_to = ChildStream::kInherit;
  ChildStream stdout_to = ChildStream::kInherit;
  ChildStream stderr_to = ChildStream::kInherit;
  // argv[0] without a '/' is looked up in PATH (e.g. {"ip", "netns", ...}).
  bool search_path = false;

  // stdin and stdout piped (write_line / read_line / expect), stderr
  // inherited: how our peer programs talk to the test.
  static ChildOptions line_protocol() {
    ChildOptions o;
    o.stdin_to = ChildStream::kPipe;
    o.stdout_to = ChildStream::kPipe;
    return o;
  }
};

// How a child ended.
struct ExitStatus {
  bool exited = false;  // normal exit: code is valid
  int code = 0;
  int signal = 0;       // killed by this signal when !exited
  // The shell's convention: the exit code, or 128 + signal.
  int shell_code() const { return exited ? code : 128 + signal; }
  std::string to_string() const;
};

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { kill_and_reap(); }
  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Runs argv[0] with argv. Replaces (kills) whatever child *this held.
  Status spawn(const std::vector<std::string>& argv, const ChildOptions& opts = {});
  // Forks and runs body() in the child, which exits with its return value.
  // Only for tests that fork before any thread exists (an engine's threads
  // do not survive fork); otherwise re-execute the program (self_exe()).
  Status spawn_function(const std::function<int()>& body, const ChildOptions& opts = {});

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // ---- Line protocol over the piped stdin/stdout ------------------------------
  // One line to the child's stdin (a newline is added). PEER_CLOSED if it
  // exited.
  Status write_line(const std::string& line);
  // Next line of the child's stdout without the newline. TIMED_OUT after
  // timeout_ms, PEER_CLOSED at end of file.
  Status read_line(std::string* line, int timeout_ms);
  // Reads lines until one starts with `prefix`; *line gets the whole line.
  // Our peers report fatal trouble as "ERROR ..." lines: such a line ends the
  // wait at once with PROTOCOL_ERROR carrying it, unless it is what we expect.
  Status expect_line(const std::string& prefix, std::string* line, int timeout_ms);
  // For EXPECT_EQ-style checks: the rest of the line after `prefix`, or
  // "<...>" saying why none came (timeout, exit, the peer's ERROR line).
  std::string expect(const std::string& prefix, int timeout_ms = 20000);

  // ---- Signals and exit -------------------------------------------------------
  Status send_signal(int signo);
  Status stop();      // SIGSTOP: frozen, its sockets still open
  Status resume();     // SIGCONT
  // Waits up to timeout_ms for the child to end. TIMED_OUT leaves it running.
  Status wait(int timeout_ms, ExitStatus* out);
  // Waits for the exit; at the deadline kills it. The shell code, or -1 on
  // timeout (the old launchers' convention, for EXPECT_EQ(…, 0)).
  int wait_exit(int timeout_ms);
  // SIGKILL + waitpid, then closes the pipes. Safe to call twice.
  void kill_and_reap();

 private:
  Status start(const std::vector<std::string>* argv, const std::function<int()>* body,
               const ChildOptions& opts);
  void close_pipes();

  pid_t pid_ = -1;
  int to_child_ = -1;    // its stdin, when piped
  int from_child_ = -1;  // its stdout, when piped
  std::string pending_;  // read but not yet returned
};

// The running program, for re-executing it in another role: /proc/self/exe
// itself, which execs this very binary even after it was replaced on disk (a
// rebuild during a long soak); its resolved name would then end in
// " (deleted)".
std::string self_exe();

}  // namespace tcpx::test

#endif  // TCPX_TESTS_SUPPORT_CHILD_PROCESS_H_
