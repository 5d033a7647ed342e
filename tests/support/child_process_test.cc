// ChildProcess against /bin/sh and forked functions: line protocol, env,
// exit codes and signals, stop/resume, deadlines, and that nothing is left
// behind (the destructor reaps; a reaped pid no longer exists).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "support/child_process.h"
#include "support/status_assert.h"

namespace tcpx::test {
namespace {

ChildOptions piped() { return ChildOptions::line_protocol(); }

bool pid_exists(pid_t pid) { return ::kill(pid, 0) == 0; }

TEST(ChildProcess, LineProtocolAndEnvironment) {
  ChildProcess c;
  ChildOptions o = piped();
  o.env = {"TCPX_SUPPORT_TEST_VAR=replaced", "HOME=/nowhere"};
  ASSERT_OK(c.spawn({"/bin/sh", "-c", "echo READY $TCPX_SUPPORT_TEST_VAR $HOME; read x; echo GOT $x; exit 3"}, o));
  EXPECT_EQ(c.expect("READY "), "replaced /nowhere");
  ASSERT_OK(c.write_line("hello"));
  EXPECT_EQ(c.expect("GOT "), "hello");
  EXPECT_EQ(c.wait_exit(10000), 3);
  EXPECT_FALSE(c.running());
}

TEST(ChildProcess, ReadLineTimesOutAndSeesEndOfFile) {
  ChildProcess c;
  ASSERT_OK(c.spawn({"/bin/sh", "-c", "read x; echo bye"}, piped()));
  std::string line;
  EXPECT_EQ(c.read_line(&line, 50).code(), StatusCode::kTimedOut);
  ASSERT_OK(c.write_line("go"));
  ASSERT_OK(c.read_line(&line, 10000));
  EXPECT_EQ(line, "bye");
  EXPECT_EQ(c.read_line(&line, 10000).code(), StatusCode::kPeerClosed);
}

TEST(ChildProcess, ErrorLineEndsAnExpectAtOnce) {
  ChildProcess c;
  ASSERT_OK(c.spawn({"/bin/sh", "-c", "echo ERROR broken; exec sleep 30"}, piped()));  // exec: see MoveHandsOverTheChild
  auto t0 = std::chrono::steady_clock::now();
  Status s = c.expect_line("DONE", nullptr, 20000);
  EXPECT_EQ(s.code(), StatusCode::kProtocolError) << s.to_string();
  EXPECT_NE(s.message().find("ERROR broken"), std::string::npos) << s.to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST(ChildProcess, StderrCanJoinTheStdoutPipe) {
  ChildProcess c;
  ChildOptions o = piped();
  o.stderr_to = ChildStream::kPipe;
  ASSERT_OK(c.spawn({"/bin/sh", "-c", "echo to-stderr >&2"}, o));
  EXPECT_EQ(c.expect("to-"), "stderr");
}

TEST(ChildProcess, FunctionChildExitCodeAndSignal) {
  ChildProcess ok, killed;
  ASSERT_OK(ok.spawn_function([] { return 7; }));
  ExitStatus st;
  ASSERT_OK(ok.wait(10000, &st));
  EXPECT_TRUE(st.exited);
  EXPECT_EQ(st.code, 7);
  ASSERT_OK(killed.spawn_function([] {
    ::raise(SIGTERM);
    return 0;
  }));
  ASSERT_OK(killed.wait(10000, &st));
  EXPECT_FALSE(st.exited);
  EXPECT_EQ(st.signal, SIGTERM);
  EXPECT_EQ(st.shell_code(), 128 + SIGTERM);
}

TEST(ChildProcess, WaitHonoursItsDeadlineAndStopResume) {
  ChildProcess c;
  ASSERT_OK(c.spawn({"/bin/sh", "-c", "read x; exit 0"}, piped()));
  ASSERT_OK(c.stop());
  ExitStatus st;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.wait(100, &st).code(), StatusCode::kTimedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(c.running());
  ASSERT_OK(c.resume());
  ASSERT_OK(c.write_line("x"));
  ASSERT_OK(c.wait(10000, &st));
  EXPECT_TRUE(st.exited);
  EXPECT_EQ(st.code, 0);
}

TEST(ChildProcess, DestructorKillsAndReapsEvenAStoppedChild) {
  pid_t pid = -1;
  {
    ChildProcess c;
    ASSERT_OK(c.spawn({"/bin/sleep", "60"}));
    pid = c.pid();
    ASSERT_OK(c.stop());
  }
  // Reaped: no zombie keeps the pid.
  EXPECT_FALSE(pid_exists(pid));
}

TEST(ChildProcess, MoveHandsOverTheChild) {
  ChildProcess a;
  // exec: the shell becomes sleep, so killing the pid leaves no orphan
  // holding the test's stderr (ctest then waited the full 60 s for it).
  ASSERT_OK(a.spawn({"/bin/sh", "-c", "echo hi; exec sleep 60"}, piped()));
  pid_t pid = a.pid();
  ChildProcess b = std::move(a);
  EXPECT_FALSE(a.running());
  EXPECT_EQ(b.pid(), pid);
  EXPECT_EQ(b.expect("h"), "i");
  b.kill_and_reap();
  EXPECT_FALSE(pid_exists(pid));
}

TEST(ChildProcess, SelfExeRunsThisProgram) {
  ChildProcess c;
  ChildOptions o = piped();
  ASSERT_OK(c.spawn({self_exe(), "--gtest_list_tests", "--gtest_filter=ChildProcess.SelfExe*"}, o));
  EXPECT_EQ(c.expect("ChildProcess"), ".");
  EXPECT_EQ(c.wait_exit(10000), 0);
}

TEST(ChildProcess, MissingProgramExits127) {
  ChildProcess c;
  ASSERT_OK(c.spawn({"/nonexistent/program"}));
  EXPECT_EQ(c.wait_exit(10000), 127);
}

}  // namespace
}  // namespace tcpx::test
