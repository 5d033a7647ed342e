// Runs another test process (capi_peer or a hostile client) with pipes on its
// stdin/stdout; every read has a deadline, and the destructor kills (SIGKILL)
// and reaps the process if it is still running.
#ifndef TCPX_TESTS_CAPI_PEER_PROCESS_H_
#define TCPX_TESTS_CAPI_PEER_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace capi_test {

class PeerProcess {
 public:
  // argv[0] is the program path. Returns false (with a reason) on failure.
  bool start(const std::vector<std::string>& argv, std::string* why);
  ~PeerProcess();

  bool send(const std::string& line);
  // Next stdout line, or false when none came within timeout_ms / EOF.
  bool read_line(std::string* line, int timeout_ms);
  // Reads lines until one starts with `prefix` (returned whole).
  bool expect(const std::string& prefix, std::string* line, int timeout_ms);
  // Waits for exit; returns the exit status, or -1 on timeout (then kills).
  int wait_exit(int timeout_ms);
  void kill_now();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int in_fd_ = -1;   // its stdin
  int out_fd_ = -1;  // its stdout
  std::string pending_;
};

// Path of a helper binary built beside the tests (from a compile definition).
std::string helper_path(const char* name);

}  // namespace capi_test

#endif  // TCPX_TESTS_CAPI_PEER_PROCESS_H_
