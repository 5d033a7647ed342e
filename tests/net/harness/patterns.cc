#include "harness/patterns.h"

#include <cstring>

namespace tcpx::conformance {
namespace {

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

void fill_pattern(void* p, size_t n, uint64_t seed) {
  auto* out = static_cast<uint8_t*>(p);
  uint64_t state = seed;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = splitmix64(&state);
    std::memcpy(out + i, &v, 8);
  }
  if (i < n) {
    uint64_t v = splitmix64(&state);
    std::memcpy(out + i, &v, n - i);
  }
}

::testing::AssertionResult has_pattern(const void* p, size_t n, uint64_t seed, const char* what) {
  const auto* in = static_cast<const uint8_t*>(p);
  uint64_t state = seed;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = splitmix64(&state);
    uint8_t expected[8];
    std::memcpy(expected, &v, 8);
    size_t chunk = n - i < 8 ? n - i : 8;
    if (std::memcmp(in + i, expected, chunk) != 0) {
      for (size_t j = 0; j < chunk; ++j)
        if (in[i + j] != expected[j])
          return ::testing::AssertionFailure()
                 << what << ": byte " << (i + j) << " of " << n << " is 0x" << std::hex
                 << int(in[i + j]) << ", expected 0x" << int(expected[j]) << std::dec;
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace tcpx::conformance
