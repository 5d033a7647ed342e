#include "crash_report.h"

#include <execinfo.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace tcpx::soak {
namespace {

const char* g_who = "tcpx-soak";

void on_crash(int sig, siginfo_t* info, void*) {
  // snprintf into a stack buffer and write(2): nothing here allocates.
  char line[256];
  int n = std::snprintf(line, sizeof(line), "%s (pid %d, thread %ld): %s, fault address %p; backtrace:\n", g_who,
                        static_cast<int>(getpid()), static_cast<long>(syscall(SYS_gettid)), strsignal(sig),
                        info != nullptr ? info->si_addr : nullptr);
  if (n > 0) (void)!write(STDERR_FILENO, line, static_cast<size_t>(n));
  void* frames[64];
  int depth = backtrace(frames, 64);
  backtrace_symbols_fd(frames, depth, STDERR_FILENO);
  // SA_RESETHAND put the default action back: die of the same signal, so
  // ctest and the parent see what it was.
  raise(sig);
}

}  // namespace

void install_crash_report(const char* who) {
  g_who = who;
  // The first backtrace() loads libgcc's unwinder, which allocates; do it
  // now rather than inside the handler.
  void* warm[1];
  backtrace(warm, 1);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_crash;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) {
    // A sanitizer's handler, when one is there, reports better: keep it.
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) == 0 && (old.sa_flags & SA_SIGINFO) == 0 && old.sa_handler == SIG_DFL)
      sigaction(sig, &sa, nullptr);
  }
}

}  // namespace tcpx::soak
