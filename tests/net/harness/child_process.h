// ChildProcess: this test binary re-executed as the other half of a test
// (/proc/self/exe --gtest_filter=<test>), with extra environment variables.
// The child dies with its parent (PR_SET_PDEATHSIG) and is always reaped: the
// destructor kills it if it is still running, so no test leaves a process
// behind even when an assertion returns early.
#ifndef TCPX_TESTS_NET_HARNESS_CHILD_PROCESS_H_
#define TCPX_TESTS_NET_HARNESS_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "tcpx/status.h"

namespace tcpx::conformance {

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { kill_and_reap(); }

  // Runs this executable with `args` and the current environment plus `env`
  // (which overrides variables of the same name).
  static Status spawn_self(const std::vector<std::string>& args,
                           const std::vector<std::pair<std::string, std::string>>& env,
                           ChildProcess* out);

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Waits up to timeout_ms for the child to exit. OK with *exit_code set (a
  // signal number is reported as 128 + signo), TIMED_OUT if still running.
  Status wait(int timeout_ms, int* exit_code);
  // SIGKILL + waitpid, if the child is still ours.
  void kill_and_reap();

 private:
  pid_t pid_ = -1;
};

}  // namespace tcpx::conformance

#endif  // TCPX_TESTS_NET_HARNESS_CHILD_PROCESS_H_
