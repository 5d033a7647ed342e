// The conformance suite's view of tests/support's seeded pattern: a gtest
// assertion naming the first differing byte, and the seed scheme of its
// message streams. Both halves of a test regenerate the same pattern from
// (seed, length), so contents are checked byte for byte without shipping the
// data out of band.
#ifndef TCPX_TESTS_NET_HARNESS_PATTERNS_H_
#define TCPX_TESTS_NET_HARNESS_PATTERNS_H_

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>

#include "support/pattern.h"

namespace tcpx::conformance {

using test::fill_pattern;

// Passes when [p, p + n) holds the pattern of `seed`; otherwise names the
// first differing offset and both bytes.
::testing::AssertionResult has_pattern(const void* p, size_t n, uint64_t seed, const char* what);

// Seed for message `index` of a stream `stream`: distinct per message so a
// misdelivered message never looks right.
inline uint64_t message_seed(uint64_t stream, uint64_t index) {
  return (stream << 32) ^ (index * 0x9E3779B97F4A7C15ull) ^ 0x5EEDull;
}
// Seed of the "untouched" fill a receive buffer carries before the data lands.
inline uint64_t fill_seed(uint64_t index) { return 0xF111ull + index * 7919; }

}  // namespace tcpx::conformance

#endif  // TCPX_TESTS_NET_HARNESS_PATTERNS_H_
