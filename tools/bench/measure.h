// Process-level measurements shared by tcpx-bench and tcpx-capi-bench: CPU
// time (getrusage, user + system, every thread of the process), the thread
// count (/proc/self/task), and percentiles of a sample.
#ifndef TCPX_TOOLS_BENCH_MEASURE_H_
#define TCPX_TOOLS_BENCH_MEASURE_H_

#include <cstddef>
#include <vector>

namespace tcpx::bench {

// User + system CPU seconds this process has used so far (all threads).
double cpu_seconds();
// Threads of this process now (entries of /proc/self/task); -1 if unreadable.
int thread_count();
// The p-th percentile (0..100, nearest rank) of `v`; sorts `v`. 0 if empty.
double percentile(std::vector<double>& v, double p);

}  // namespace tcpx::bench

#endif  // TCPX_TOOLS_BENCH_MEASURE_H_
