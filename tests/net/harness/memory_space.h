// MemorySpace: where a mode's buffers live, host memory or CUDA device
// memory, with the few operations the suite needs (allocate, fill with a
// pattern, check a pattern, copy). CUDA comes from libcudart, dlopened here so
// the suite builds and runs on hosts without CUDA (the CUDA mode then skips).
#ifndef TCPX_TESTS_NET_HARNESS_MEMORY_SPACE_H_
#define TCPX_TESTS_NET_HARNESS_MEMORY_SPACE_H_

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "tcpx/status.h"

namespace tcpx::conformance {

class MemorySpace {
 public:
  virtual ~MemorySpace() = default;
  // Page-aligned (4096) allocation; nullptr on failure.
  virtual void* alloc(size_t n) = 0;
  virtual void free(void* p) = 0;
  // Copies between any two pointers of this space or the host.
  virtual Status copy(void* dst, const void* src, size_t n) = 0;
  virtual bool is_host() const = 0;

  // Writes the pattern of `seed` into [p, p + n).
  Status fill(void* p, size_t n, uint64_t seed);
  // Passes when [p, p + n) holds the pattern of `seed`.
  ::testing::AssertionResult has_pattern(const void* p, size_t n, uint64_t seed, const std::string& what);
};

MemorySpace& host_space();
// The CUDA space on device 0, or nullptr with *why_not set (no libcudart, no
// device).
MemorySpace* cuda_space(std::string* why_not);

// An allocation in one space, freed on destruction.
class Buffer {
 public:
  Buffer(MemorySpace& space, size_t size) : space_(&space), size_(size), p_(static_cast<uint8_t*>(space.alloc(size))) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { space_->free(p_); }
  uint8_t* data() const { return p_; }
  size_t size() const { return size_; }

 private:
  MemorySpace* space_;
  size_t size_;
  uint8_t* p_;
};

}  // namespace tcpx::conformance

#endif  // TCPX_TESTS_NET_HARNESS_MEMORY_SPACE_H_
