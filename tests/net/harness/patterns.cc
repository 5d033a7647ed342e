#include "harness/patterns.h"

namespace tcpx::conformance {

::testing::AssertionResult has_pattern(const void* p, size_t n, uint64_t seed, const char* what) {
  size_t bad = test::check_pattern(p, n, seed);
  if (bad == test::kPatternMatches) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": byte " << bad << " of " << n << " is 0x" << std::hex
                                       << int(static_cast<const uint8_t*>(p)[bad]) << ", expected 0x"
                                       << int(test::pattern_byte(seed, bad)) << std::dec;
}

}  // namespace tcpx::conformance
