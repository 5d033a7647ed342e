// A stand-in for libtcpx_cuda.so that lets the GPU engine tests run their own
// logic on a host without a GPU (the "emulated" ctest entries). "Device"
// memory is host memory handed out by tcpx_gputest_emu_malloc and recognised
// by pointer_kind, copies are memcpy, and the unpacker scatters on the CPU
// with the kernel's entry checks, a while after the submit. It proves the
// tests and the engine's CUDA path choices (kind detection, NCCL_PTR_CUDA registration, the CUDA
// unpacker for CUDA destinations, uploads of inline data); it proves nothing
// about the real kernel or CUDA copies, which only a GPU run does.
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "cuda/cuda_ops.h"

namespace {

std::mutex g_mu;
std::atomic<uint64_t> g_unpack_jobs{0};  // jobs (unpacks and copies) submitted, for the tests' path check
std::map<uintptr_t, size_t>& allocations() {
  static auto* m = new std::map<uintptr_t, size_t>();  // leaked: used until exit
  return *m;
}

bool is_emulated_device(const void* p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = allocations().upper_bound(a);
  if (it == allocations().begin()) return false;
  --it;
  return a < it->first + it->second;
}

int device_count(int* count) {
  *count = 1;
  return 0;
}

int pointer_kind(const void* p, int* is_device, int* device) {
  *is_device = is_emulated_device(p) ? 1 : 0;
  if (device != nullptr) *device = *is_device ? 0 : -1;
  return 0;
}

// Pinned host memory: anonymous pages, zero until touched. The built-in
// plugin takes 128 MiB of it per receive comm for its bounce buffer, of
// which a test touches a few pages; zeroing it all (as a memset would) cost
// about 70 ms per comm, most of a GPU test's connection setup.
std::map<uintptr_t, size_t>& host_allocations() {
  static auto* m = new std::map<uintptr_t, size_t>();  // leaked: used until exit
  return *m;
}

int host_alloc_mapped(size_t size, void** host_ptr, void** device_ptr) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return 2;  // cudaErrorMemoryAllocation
  {
    std::lock_guard<std::mutex> lock(g_mu);
    host_allocations()[reinterpret_cast<uintptr_t>(p)] = size;
  }
  *host_ptr = p;
  if (device_ptr != nullptr) *device_ptr = p;
  return 0;
}

// cudaFreeHost and cudaFree wait for the device first: every job submitted
// so far runs before its memory goes (defined with the unpacker below).
void finish_all_jobs();

int host_free(void* p) {
  finish_all_jobs();
  size_t size = 0;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = host_allocations().find(reinterpret_cast<uintptr_t>(p));
    if (it == host_allocations().end()) return 1;  // cudaErrorInvalidValue
    size = it->second;
    host_allocations().erase(it);
  }
  munmap(p, size);
  return 0;
}

// TCPX_GPU_TEST_EMULATED_US=N: every copy takes N us (busy, as a synchronous
// cudaMemcpy blocks its caller) and every unpack job runs N us after its
// submit at the earliest (as a kernel completes later, with no fd to wake
// anyone). 0 keeps copies instant; jobs still run at a query. The default:
// TCPX_EMULATED_DEFAULT_US, 0 unless the build says otherwise.
#ifndef TCPX_EMULATED_DEFAULT_US
#define TCPX_EMULATED_DEFAULT_US 0
#endif
std::chrono::microseconds emulated_latency() {
  static const auto us = [] {
    const char* v = std::getenv("TCPX_GPU_TEST_EMULATED_US");
    return std::chrono::microseconds(v != nullptr ? std::atoi(v) : TCPX_EMULATED_DEFAULT_US);
  }();
  return us;
}

int copy(void* dst, const void* src, size_t n) {
  std::memcpy(dst, src, n);
  const auto until = std::chrono::steady_clock::now() + emulated_latency();
  while (std::chrono::steady_clock::now() < until) {
  }
  return 0;
}

const char* error_string(int err) { return err == TCPX_CUDA_ERR_BAD_JOB ? "bad unpack job" : "emulated CUDA error"; }

// Jobs run later, as a kernel does: a job scatters when a query finds it
// due (TCPX_GPU_TEST_EMULATED_US after its submit), reading the slot's
// loadMeta and the bounce buffer only then, and jobs run in submit order, as
// on one stream. An engine that consumed a slot, or let the plugin reuse it,
// before the job finished would deliver wrong bytes. Like the real ring of
// TCPX_CUDA_UNPACK_RING records, a result is forgotten once that many newer
// tickets were issued (a later query is UNKNOWN_TICKET), and a submit that
// would reuse the record of a job still running is refused with BUSY.
struct Job {
  tcpxCudaUnpackJob job;  // an unpack; or, when copy_src is set, a copy
  const void* copy_src = nullptr;
  size_t copy_bytes = 0;
  std::chrono::steady_clock::time_point due;
  uint32_t bad = 0;  // once it ran
};

struct Unpacker {
  std::mutex mu;
  uint64_t next = 1;
  uint64_t ran_below = 1;  // the jobs with a smaller ticket have run, no other
  std::map<uint64_t, Job> jobs;
};

uint32_t run(const Job& j);

// Runs, in stream order, every job up to and including ticket t that has not
// run yet; up->mu held.
void run_through(Unpacker* up, uint64_t t) {
  if (t < up->ran_below) return;
  for (auto j = up->jobs.lower_bound(up->ran_below); j != up->jobs.end() && j->first <= t; ++j)
    j->second.bad = run(j->second);
  up->ran_below = t + 1;
}

std::mutex g_unpackers_mu;  // taken before any Unpacker::mu
std::set<Unpacker*>& unpackers() {
  static auto* u = new std::set<Unpacker*>();  // leaked: used until exit
  return *u;
}

// Runs every job of up submitted so far (a stream synchronize).
void run_submitted(Unpacker* up) {
  std::lock_guard<std::mutex> lock(up->mu);
  if (up->next > 1) run_through(up, up->next - 1);
}

void finish_all_jobs() {
  std::lock_guard<std::mutex> all(g_unpackers_mu);
  for (Unpacker* up : unpackers()) run_submitted(up);
}

// Files j (due TCPX_GPU_TEST_EMULATED_US from now) under the next ticket,
// in the record of the ticket TCPX_CUDA_UNPACK_RING before it.
int enqueue(Unpacker* up, Job j, uint64_t* ticket) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(up->mu);
  if (up->next > TCPX_CUDA_UNPACK_RING) {
    auto old = up->jobs.find(up->next - TCPX_CUDA_UNPACK_RING);
    if (old != up->jobs.end()) {
      if (old->first >= up->ran_below && now < old->second.due) return TCPX_CUDA_ERR_BUSY;
      run_through(up, old->first);
      up->jobs.erase(old);
    }
  }
  g_unpack_jobs.fetch_add(1);
  j.due = now + emulated_latency();
  *ticket = up->next++;
  up->jobs[*ticket] = j;
  return 0;
}

uint32_t scatter(const tcpxCudaUnpackJob& job) {
  const uint64_t cnt = job.meta->cnt[job.slot];
  uint32_t bad = 0;
  for (uint64_t i = 0; i < cnt; ++i) {
    const loadMeta& m = job.meta->mem[job.slot][i];
    if (m.len > NET_UNPACK_PAGE_SIZE) bad |= TCPX_CUDA_BAD_LEN;
    if (m.dst_off + m.len > job.dst_capacity) bad |= TCPX_CUDA_BAD_DST;
    if (job.bounce_capacity != 0 && m.src_off + uint64_t{m.len} > job.bounce_capacity) bad |= TCPX_CUDA_BAD_SRC;
  }
  if (bad == 0)
    for (uint64_t i = 0; i < cnt; ++i) {
      const loadMeta& m = job.meta->mem[job.slot][i];
      std::memcpy(static_cast<uint8_t*>(job.dst) + m.dst_off, static_cast<const uint8_t*>(job.bounce_buf) + m.src_off,
                  m.len);
    }
  return bad;
}

uint32_t run(const Job& j) {
  if (j.copy_src != nullptr) {
    std::memcpy(j.job.dst, j.copy_src, j.copy_bytes);
    return 0;
  }
  return scatter(j.job);
}

int unpacker_create(int device, void** out) {
  if (device != 0) return TCPX_CUDA_ERR_INVALID;
  auto* up = new Unpacker();
  std::lock_guard<std::mutex> all(g_unpackers_mu);
  unpackers().insert(up);
  *out = up;
  return 0;
}

int unpacker_submit(void* u, const tcpxCudaUnpackJob* job, uint64_t* ticket) {
  auto* up = static_cast<Unpacker*>(u);
  // What the real submit checks from the host before its launch.
  if (job->slot < 0 || job->slot >= NET_UNPACK_MAX_SLICES) return TCPX_CUDA_ERR_BAD_JOB;
  if (job->meta->cnt[job->slot] > NET_UNPACK_MAX_SLICE_PAGES) return TCPX_CUDA_ERR_BAD_JOB;
  if (!is_emulated_device(job->dst)) return TCPX_CUDA_ERR_DST_UNREACHABLE;  // the real kernel needs device memory
  Job j{};
  j.job = *job;
  return enqueue(up, j, ticket);
}

// TCPX_GPU_TEST_EMULATED_COPY_BUSY_EVERY=N: every Nth copy is refused with
// BUSY, as a real unpacker does when its ring is full of jobs, so the
// engine's way around a refused upload (the plugin path) runs too. 0: never.
// The default: TCPX_EMULATED_COPY_BUSY_EVERY_DEFAULT, 0 unless the build says
// otherwise.
#ifndef TCPX_EMULATED_COPY_BUSY_EVERY_DEFAULT
#define TCPX_EMULATED_COPY_BUSY_EVERY_DEFAULT 0
#endif
bool refuse_this_copy() {
  static const long every = [] {
    const char* v = std::getenv("TCPX_GPU_TEST_EMULATED_COPY_BUSY_EVERY");
    return v != nullptr ? std::atol(v) : long{TCPX_EMULATED_COPY_BUSY_EVERY_DEFAULT};
  }();
  static std::atomic<long> copies{0};
  return every > 0 && ++copies % every == 0;
}

int unpacker_submit_copy(void* u, void* dst, const void* src, size_t n, uint64_t* ticket) {
  auto* up = static_cast<Unpacker*>(u);
  if (!is_emulated_device(dst) && !is_emulated_device(src)) return TCPX_CUDA_ERR_DST_UNREACHABLE;
  if (refuse_this_copy()) return TCPX_CUDA_ERR_BUSY;
  Job j{};
  j.job.dst = dst;
  j.copy_src = src;
  j.copy_bytes = n;
  return enqueue(up, j, ticket);
}

int unpacker_query(void* u, uint64_t ticket, int* state, uint32_t* bad_entry_flags) {
  auto* up = static_cast<Unpacker*>(u);
  std::lock_guard<std::mutex> lock(up->mu);
  auto it = up->jobs.find(ticket);
  if (it == up->jobs.end()) return TCPX_CUDA_ERR_UNKNOWN_TICKET;
  if (ticket >= up->ran_below) {
    if (std::chrono::steady_clock::now() < it->second.due) {
      *state = TCPX_CUDA_JOB_RUNNING;
      return 0;
    }
    run_through(up, ticket);  // in stream order, with every earlier one not run yet
  }
  *state = it->second.bad == 0 ? TCPX_CUDA_JOB_DONE : TCPX_CUDA_JOB_FAILED;
  if (bad_entry_flags != nullptr) *bad_entry_flags = it->second.bad;
  return 0;
}

// As the real one, waits for the jobs in flight (here: runs them).
int unpacker_destroy(void* u) {
  auto* up = static_cast<Unpacker*>(u);
  {
    std::lock_guard<std::mutex> all(g_unpackers_mu);
    unpackers().erase(up);
  }
  run_submitted(up);
  delete up;
  return 0;
}

// "Device" memory: host memory that pointer_kind recognises.
void* emulated_malloc(size_t size) {
  void* p = nullptr;
  if (posix_memalign(&p, 4096, size) != 0) return nullptr;
  std::lock_guard<std::mutex> lock(g_mu);
  allocations()[reinterpret_cast<uintptr_t>(p)] = size;
  return p;
}

void emulated_free(void* p) {
  finish_all_jobs();
  {
    std::lock_guard<std::mutex> lock(g_mu);
    allocations().erase(reinterpret_cast<uintptr_t>(p));
  }
  std::free(p);
}

int device_alloc(int, size_t size, void** ptr) {
  *ptr = emulated_malloc(size);
  return *ptr != nullptr ? 0 : 2;  // cudaErrorMemoryAllocation
}

int device_free(void* p) {
  emulated_free(p);
  return 0;
}

const tcpxCudaOps_v1 kOps = {
    TCPX_CUDA_OPS_VERSION, device_count,    pointer_kind,    host_alloc_mapped, host_free,      copy,
    copy,                  error_string,    unpacker_create, unpacker_submit,   unpacker_query, unpacker_destroy,
    device_alloc,          device_free,     unpacker_submit_copy,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const tcpxCudaOps_v1* tcpx_cuda_ops_v1(void) { return &kOps; }

extern "C" __attribute__((visibility("default"))) void* tcpx_gputest_emu_malloc(size_t size) {
  return emulated_malloc(size);
}

extern "C" __attribute__((visibility("default"))) void tcpx_gputest_emu_free(void* p) { emulated_free(p); }

// How many unpack jobs this process submitted: the tests check that CUDA
// destinations really went through the CUDA unpacker.
extern "C" __attribute__((visibility("default"))) uint64_t tcpx_gputest_emu_unpack_jobs(void) {
  return g_unpack_jobs.load();
}
