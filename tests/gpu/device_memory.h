// Memory for the GPU engine tests: a region in host memory or in CUDA device
// memory, filled and checked through host copies (device bytes are always
// copied back before a check). Device memory comes from the CUDA runtime this
// binary links, or, in the emulated run, from the stand-in CUDA library whose
// path TCPX_GPU_TEST_EMULATED gives (see emulated_cuda_lib.cc), so the same
// test code is exercised on hosts without a GPU.
#ifndef TCPX_TESTS_GPU_DEVICE_MEMORY_H_
#define TCPX_TESTS_GPU_DEVICE_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tcpx::gputest {

enum class Kind { kHost, kGpu };
const char* kind_name(Kind k);

// "" when the engine can use a GPU here (the CUDA table loaded and reports at
// least one device); otherwise why not, for GTEST_SKIP.
std::string gpu_unavailable_reason();
// TCPX_GPU_TEST_EMULATED=<stand-in library>: device memory comes from it, and
// it replaces libtcpx_cuda.so (TCPX_CUDA_LIB, set by gpu_unavailable_reason()).
bool emulated();

// Emulated run only: unpack jobs the stand-in CUDA unpacker has run in this
// process so far; -1 in a real GPU run (nothing to count there).
int64_t emulated_unpack_jobs();

class Region {
 public:
  Region() = default;
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  // 4096-aligned allocation of `size` bytes; false with *why on failure.
  bool allocate(Kind kind, size_t size, std::string* why);
  uint8_t* data() const { return p_; }
  size_t size() const { return size_; }
  Kind kind() const { return kind_; }

  // Every call returns "" on success or what failed.
  std::string set(uint8_t byte);
  std::string fill_pattern(size_t off, size_t n, uint64_t seed);
  std::string read(size_t off, size_t n, std::vector<uint8_t>* out) const;
  // "" when [off, off+n) holds the pattern of `seed` and the `guard` bytes on
  // each side that lie inside the region still hold `guard_byte`.
  std::string check(size_t off, size_t n, uint64_t seed, size_t guard, uint8_t guard_byte) const;

 private:
  Kind kind_ = Kind::kHost;
  uint8_t* p_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tcpx::gputest

#endif  // TCPX_TESTS_GPU_DEVICE_MEMORY_H_
