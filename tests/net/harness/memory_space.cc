#include "harness/memory_space.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "harness/patterns.h"

namespace tcpx::conformance {
namespace {

class HostSpace : public MemorySpace {
 public:
  void* alloc(size_t n) override {
    size_t rounded = (n + 4095) / 4096 * 4096;
    return std::aligned_alloc(4096, rounded == 0 ? 4096 : rounded);
  }
  void free(void* p) override { std::free(p); }
  Status copy(void* dst, const void* src, size_t n) override {
    if (n > 0) std::memcpy(dst, src, n);
    return Status::Ok();
  }
  bool is_host() const override { return true; }
};

// The handful of runtime calls used, with their C signatures; cudaError_t is
// an int-sized enum and cudaMemcpyDefault (4) lets UVA pick the direction.
class CudaSpace : public MemorySpace {
 public:
  bool load(std::string* why_not) {
    for (const char* lib : {"libcudart.so", "libcudart.so.13", "libcudart.so.12"}) {
      dl_ = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
      if (dl_ != nullptr) break;
    }
    if (dl_ == nullptr) {
      *why_not = "no libcudart on this host";
      return false;
    }
    count_ = reinterpret_cast<int (*)(int*)>(dlsym(dl_, "cudaGetDeviceCount"));
    malloc_ = reinterpret_cast<int (*)(void**, size_t)>(dlsym(dl_, "cudaMalloc"));
    free_ = reinterpret_cast<int (*)(void*)>(dlsym(dl_, "cudaFree"));
    memcpy_ = reinterpret_cast<int (*)(void*, const void*, size_t, int)>(dlsym(dl_, "cudaMemcpy"));
    if (count_ == nullptr || malloc_ == nullptr || free_ == nullptr || memcpy_ == nullptr) {
      *why_not = "libcudart lacks a needed symbol";
      return false;
    }
    int n = 0;
    if (count_(&n) != 0 || n < 1) {
      *why_not = "needs a GPU: no CUDA device visible";
      return false;
    }
    return true;
  }
  void* alloc(size_t n) override {
    // cudaMalloc aligns to 256 bytes at least; TCPX needs 4096, so round up
    // inside a slightly larger allocation and remember the base.
    void* base = nullptr;
    if (malloc_(&base, n + 4096) != 0) return nullptr;
    auto aligned = (reinterpret_cast<uintptr_t>(base) + 4095) / 4096 * 4096;
    std::lock_guard<std::mutex> lock(mu_);
    bases_.emplace_back(reinterpret_cast<void*>(aligned), base);
    return reinterpret_cast<void*>(aligned);
  }
  void free(void* p) override {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < bases_.size(); ++i) {
      if (bases_[i].first == p) {
        free_(bases_[i].second);
        bases_.erase(bases_.begin() + static_cast<long>(i));
        return;
      }
    }
  }
  Status copy(void* dst, const void* src, size_t n) override {
    if (n == 0) return Status::Ok();
    int e = memcpy_(dst, src, n, /*cudaMemcpyDefault=*/4);
    if (e != 0) return Status(StatusCode::kCudaError, "cudaMemcpy failed: error " + std::to_string(e));
    return Status::Ok();
  }
  bool is_host() const override { return false; }

 private:
  void* dl_ = nullptr;
  int (*count_)(int*) = nullptr;
  int (*malloc_)(void**, size_t) = nullptr;
  int (*free_)(void*) = nullptr;
  int (*memcpy_)(void*, const void*, size_t, int) = nullptr;
  std::mutex mu_;
  std::vector<std::pair<void*, void*>> bases_;  // (aligned, base)
};

}  // namespace

Status MemorySpace::fill(void* p, size_t n, uint64_t seed) {
  if (is_host()) {
    fill_pattern(p, n, seed);
    return Status::Ok();
  }
  std::vector<uint8_t> staging(n);
  fill_pattern(staging.data(), n, seed);
  return copy(p, staging.data(), n);
}

::testing::AssertionResult MemorySpace::has_pattern(const void* p, size_t n, uint64_t seed, const std::string& what) {
  if (is_host()) return conformance::has_pattern(p, n, seed, what.c_str());
  std::vector<uint8_t> staging(n);
  Status s = copy(staging.data(), p, n);
  if (!s.ok()) return ::testing::AssertionFailure() << what << ": " << s.to_string();
  return conformance::has_pattern(staging.data(), n, seed, what.c_str());
}

MemorySpace& host_space() {
  static HostSpace space;
  return space;
}

MemorySpace* cuda_space(std::string* why_not) {
  static std::once_flag once;
  static CudaSpace* space = nullptr;
  static std::string reason;
  std::call_once(once, [] {
    auto* s = new CudaSpace();  // lives for the process, like the runtime
    if (s->load(&reason))
      space = s;
    else
      delete s;
  });
  if (space == nullptr && why_not != nullptr) *why_not = reason;
  return space;
}

}  // namespace tcpx::conformance
