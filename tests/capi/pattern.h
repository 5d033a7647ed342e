// Deterministic buffer contents shared by the tests and their peer process:
// byte j of a buffer filled with `seed` is pattern_byte(seed, j), so either
// side can check any range without shipping the data.
#ifndef TCPX_TESTS_CAPI_PATTERN_H_
#define TCPX_TESTS_CAPI_PATTERN_H_

#include <cstddef>
#include <cstdint>

namespace capi_test {

inline uint8_t pattern_byte(uint32_t seed, uint64_t j) {
  uint64_t x = (j + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t{seed} + 1) * 0xC2B2AE3D27D4EB4Full;
  x ^= x >> 29;
  return static_cast<uint8_t>(x >> 24);
}

inline void fill_pattern(uint8_t* p, size_t n, uint32_t seed, uint64_t first = 0) {
  for (size_t i = 0; i < n; ++i) p[i] = pattern_byte(seed, first + i);
}

// Index of the first byte that differs, or -1 when all match.
inline long long check_pattern(const uint8_t* p, size_t n, uint32_t seed, uint64_t first = 0) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != pattern_byte(seed, first + i)) return static_cast<long long>(i);
  return -1;
}

}  // namespace capi_test

#endif  // TCPX_TESTS_CAPI_PATTERN_H_
