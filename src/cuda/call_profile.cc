#include "cuda/call_profile.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace tcpx::cuda {
namespace {

using Clock = std::chrono::steady_clock;

struct Stat {
  const char* name;
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> total_ns{0};
  std::atomic<uint64_t> max_ns{0};

  void add(Clock::duration d) {
    const auto ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
    calls.fetch_add(1, std::memory_order_relaxed);
    total_ns.fetch_add(ns, std::memory_order_relaxed);
    uint64_t m = max_ns.load(std::memory_order_relaxed);
    while (ns > m && !max_ns.compare_exchange_weak(m, ns, std::memory_order_relaxed)) {
    }
  }
};

enum { kSubmit, kCopy, kQuery, kD2h, kH2d, kJob, kStats };
// "unpack_job" is not a call: it is the time from a job's submit to the first
// query that saw it finished, so it holds the GPU's latency plus however late
// the engine looked.
Stat g_stats[kStats] = {{"unpacker_submit"}, {"unpacker_submit_copy"}, {"unpacker_query"},
                        {"memcpy_d2h"},      {"memcpy_h2d"},           {"unpack_job"}};
const tcpxCudaOps_v1* g_plain = nullptr;
tcpxCudaOps_v1 g_profiled;

// Times fn(args...) into g_stats[which].
template <int which, typename Fn, typename... Args>
int timed(Fn fn, Args... args) {
  const auto t0 = Clock::now();
  int e = fn(args...);
  g_stats[which].add(Clock::now() - t0);
  return e;
}

// Submit times of the jobs in flight, by ticket. A job still running when its
// entry is reused (more than kJobs in flight) is simply not counted.
constexpr size_t kJobs = 4096;
struct JobStart {
  void* unpacker = nullptr;
  uint64_t ticket = UINT64_MAX;
  Clock::time_point at;
};
std::mutex g_jobs_mu;
JobStart g_jobs[kJobs];

void job_started(void* u, uint64_t ticket, Clock::time_point t0) {
  std::lock_guard<std::mutex> lock(g_jobs_mu);
  g_jobs[ticket % kJobs] = JobStart{u, ticket, t0};
}

int submit(void* u, const tcpxCudaUnpackJob* job, uint64_t* ticket) {
  const auto t0 = Clock::now();
  int e = timed<kSubmit>(g_plain->unpacker_submit, u, job, ticket);
  if (e == 0) job_started(u, *ticket, t0);
  return e;
}
int submit_copy(void* u, void* dst, const void* src, size_t n, uint64_t* ticket) {
  const auto t0 = Clock::now();
  int e = timed<kCopy>(g_plain->unpacker_submit_copy, u, dst, src, n, ticket);
  if (e == 0) job_started(u, *ticket, t0);
  return e;
}
int query(void* u, uint64_t ticket, int* state, uint32_t* bad) {
  int e = timed<kQuery>(g_plain->unpacker_query, u, ticket, state, bad);
  if (e == 0 && *state != TCPX_CUDA_JOB_RUNNING) {
    std::lock_guard<std::mutex> lock(g_jobs_mu);
    JobStart& j = g_jobs[ticket % kJobs];
    if (j.unpacker == u && j.ticket == ticket) {
      g_stats[kJob].add(Clock::now() - j.at);
      j.ticket = UINT64_MAX;  // count each job once
    }
  }
  return e;
}
int d2h(void* dst, const void* src, size_t n) { return timed<kD2h>(g_plain->memcpy_d2h, dst, src, n); }
int h2d(void* dst, const void* src, size_t n) { return timed<kH2d>(g_plain->memcpy_h2d, dst, src, n); }

// Prints at exit (a static object's destructor: the library is never
// unloaded, so it runs when the process ends normally).
struct Report {
  bool on = false;
  ~Report() {
    if (!on) return;
    std::fprintf(stderr, "tcpx_cuda profile, pid %d:", static_cast<int>(getpid()));
    for (const Stat& s : g_stats) {
      const uint64_t n = s.calls.load();
      if (n == 0) continue;
      std::fprintf(stderr, " %s %llu %s, mean %.2f us, max %.1f us;", s.name, static_cast<unsigned long long>(n),
                   &s == &g_stats[kJob] ? "jobs" : "calls",
                   static_cast<double>(s.total_ns.load()) / 1e3 / static_cast<double>(n),
                   static_cast<double>(s.max_ns.load()) / 1e3);
    }
    std::fprintf(stderr, "\n");
  }
} g_report;

}  // namespace

const tcpxCudaOps_v1* maybe_profiled(const tcpxCudaOps_v1* plain) {
  const char* v = std::getenv("TCPX_CUDA_PROFILE");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "0") == 0) return plain;
  g_plain = plain;
  g_profiled = *plain;
  g_profiled.unpacker_submit = submit;
  g_profiled.unpacker_submit_copy = submit_copy;
  g_profiled.unpacker_query = query;
  g_profiled.memcpy_d2h = d2h;
  g_profiled.memcpy_h2d = h2d;
  g_report.on = true;
  return &g_profiled;
}

}  // namespace tcpx::cuda
