// A stack trace on stderr when a soak process crashes. The soak runs for
// minutes against faults it injects at random, so a crash is rare and hard
// to replay: the trace in the ctest log is often all there will be.
#ifndef TCPX_TESTS_SOAK_CRASH_REPORT_H_
#define TCPX_TESTS_SOAK_CRASH_REPORT_H_

namespace tcpx::soak {

// On SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT: writes the signal, the
// faulting address, the thread and a backtrace (module+offset for hidden
// symbols: `addr2line -e <module> <offset>` on the same build names the
// line), then dies of the same signal. Signals that already have a handler
// (a sanitizer's) keep it.
void install_crash_report(const char* who);

}  // namespace tcpx::soak

#endif  // TCPX_TESTS_SOAK_CRASH_REPORT_H_
