#include "device_memory.h"

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "cuda/cuda_ops.h"
#include "test_util.h"

namespace tcpx::gputest {
namespace {

// The stand-in library's allocator (emulated run only).
struct EmulatedAlloc {
  void* (*malloc_fn)(size_t) = nullptr;
  void (*free_fn)(void*) = nullptr;
  uint64_t (*unpack_jobs_fn)() = nullptr;
};

const EmulatedAlloc& emulated_alloc() {
  static const EmulatedAlloc a = [] {
    EmulatedAlloc r;
    const char* lib = std::getenv("TCPX_GPU_TEST_EMULATED");
    if (lib == nullptr || *lib == '\0') return r;
    // The engine dlopens the same file: this only takes another reference.
    void* dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) return r;
    r.malloc_fn = reinterpret_cast<void* (*)(size_t)>(dlsym(dl, "tcpx_gputest_emu_malloc"));
    r.free_fn = reinterpret_cast<void (*)(void*)>(dlsym(dl, "tcpx_gputest_emu_free"));
    r.unpack_jobs_fn = reinterpret_cast<uint64_t (*)()>(dlsym(dl, "tcpx_gputest_emu_unpack_jobs"));
    return r;
  }();
  return a;
}

std::string cuda_error(const char* what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorString(e);
}

// Copies between host and the region's memory (device or host).
std::string copy(Kind kind, void* dst, const void* src, size_t n, cudaMemcpyKind dir) {
  if (n == 0) return "";
  if (kind == Kind::kHost || emulated()) {
    std::memcpy(dst, src, n);
    return "";
  }
  cudaError_t e = cudaMemcpy(dst, src, n, dir);
  // From pageable memory cudaMemcpy may return before its DMA reached the
  // device, and the engine's copies (on a non-blocking stream, like TCPX's
  // own DMA) do not wait for the legacy stream: a transfer posted right
  // after it read stale bytes on an H200 (gpu->gpu inline writes of 4 KiB).
  // Applications must make device memory ready before they post; so do
  // the tests.
  if (e == cudaSuccess && dir == cudaMemcpyHostToDevice) e = cudaDeviceSynchronize();
  return e == cudaSuccess ? "" : cuda_error("cudaMemcpy", e);
}

}  // namespace

const char* kind_name(Kind k) { return k == Kind::kGpu ? "gpu" : "host"; }

bool emulated() {
  const char* v = std::getenv("TCPX_GPU_TEST_EMULATED");
  return v != nullptr && *v != '\0';
}

std::string gpu_unavailable_reason() {
  // The emulated run points the engine (and, through the inherited
  // environment, the peer) at the stand-in library before its first load.
  if (emulated()) setenv("TCPX_CUDA_LIB", std::getenv("TCPX_GPU_TEST_EMULATED"), 1);
  const tcpxCudaOps_v1* ops = tcpx::cuda::ops();
  if (ops == nullptr) return tcpx::cuda::unavailable_reason();
  int n = 0;
  int e = ops->device_count(&n);
  if (e != 0) return std::string("cudaGetDeviceCount failed: ") + ops->error_string(e);
  if (n <= 0) return "the CUDA runtime reports 0 devices";
  const EmulatedAlloc& a = emulated_alloc();
  if (emulated() && (a.malloc_fn == nullptr || a.free_fn == nullptr || a.unpack_jobs_fn == nullptr))
    return "TCPX_GPU_TEST_EMULATED names a library without the emulated allocator";
  return "";
}

int64_t emulated_unpack_jobs() {
  if (!emulated() || emulated_alloc().unpack_jobs_fn == nullptr) return -1;
  return static_cast<int64_t>(emulated_alloc().unpack_jobs_fn());
}

Region::~Region() {
  if (p_ == nullptr) return;
  if (kind_ == Kind::kHost) std::free(p_);
  else if (emulated()) emulated_alloc().free_fn(p_);
  else cudaFree(p_);
}

bool Region::allocate(Kind kind, size_t size, std::string* why) {
  kind_ = kind;
  size_ = size;
  void* p = nullptr;
  if (kind == Kind::kHost) {
    p = std::aligned_alloc(4096, (size + 4095) / 4096 * 4096);
    if (p == nullptr) *why = "aligned_alloc failed";
  } else if (emulated()) {
    p = emulated_alloc().malloc_fn(size);
    if (p == nullptr) *why = "emulated device allocation failed";
  } else {
    cudaError_t e = cudaSetDevice(0);
    if (e == cudaSuccess) e = cudaMalloc(&p, size);
    if (e != cudaSuccess) {
      *why = cuda_error("cudaMalloc", e);
      p = nullptr;
    }
  }
  p_ = static_cast<uint8_t*>(p);
  // cudaMalloc returns at least 256-byte alignment and, for allocations this
  // large, whole pages; the engine refuses CUDA registrations that are not
  // 4096-aligned, so say so here rather than as a confusing reg failure.
  if (p_ != nullptr && reinterpret_cast<uintptr_t>(p_) % 4096 != 0) {
    *why = "allocation is not 4096-byte aligned";
    return false;
  }
  return p_ != nullptr;
}

std::string Region::set(uint8_t byte) {
  if (kind_ == Kind::kHost || emulated()) {
    std::memset(p_, byte, size_);
    return "";
  }
  cudaError_t e = cudaMemset(p_, byte, size_);
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  return e == cudaSuccess ? "" : cuda_error("cudaMemset", e);
}

std::string Region::fill_pattern(size_t off, size_t n, uint64_t seed) {
  if (off + n > size_) return "fill_pattern past the region";
  std::vector<uint8_t> host(n);
  tcpx::test::fill_pattern(host.data(), n, seed);
  return copy(kind_, p_ + off, host.data(), n, cudaMemcpyHostToDevice);
}

std::string Region::read(size_t off, size_t n, std::vector<uint8_t>* out) const {
  if (off + n > size_) return "read past the region";
  out->resize(n);
  return copy(kind_, out->data(), p_ + off, n, cudaMemcpyDeviceToHost);
}

std::string Region::check(size_t off, size_t n, uint64_t seed, size_t guard, uint8_t guard_byte) const {
  size_t lo = off >= guard ? off - guard : 0;
  size_t hi = std::min(size_, off + n + guard);
  std::vector<uint8_t> got;
  if (std::string e = read(lo, hi - lo, &got); !e.empty()) return e;
  for (size_t i = lo; i < off; ++i)
    if (got[i - lo] != guard_byte) return "byte " + std::to_string(i) + " before the data was overwritten";
  size_t bad = tcpx::test::check_pattern(got.data() + (off - lo), n, seed);
  if (bad != tcpx::test::kPatternMatches) return "data differs at byte " + std::to_string(bad) + " of " + std::to_string(n);
  for (size_t i = off + n; i < hi; ++i)
    if (got[i - lo] != guard_byte) return "byte " + std::to_string(i - off - n) + " past the data was overwritten";
  return "";
}

}  // namespace tcpx::gputest
