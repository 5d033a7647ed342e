// Deterministic buffer contents shared by every test and its peer processes:
// byte i of the pattern of `seed` depends only on (seed, i), so either side
// can fill or check any slice of a buffer alone, without shipping the data.
#ifndef TCPX_TESTS_SUPPORT_PATTERN_H_
#define TCPX_TESTS_SUPPORT_PATTERN_H_

#include <cstddef>
#include <cstdint>

namespace tcpx::test {

// check_pattern's answer when every byte matches.
inline constexpr size_t kPatternMatches = SIZE_MAX;

// Byte i of the pattern of seed, and word w (bytes 8w..8w+7, little-endian):
// a well-mixed 64-bit value of (seed, w), also handy as a seeded random number.
uint8_t pattern_byte(uint64_t seed, uint64_t i);
uint64_t pattern_word(uint64_t seed, uint64_t w);
// Writes bytes [start, start + n) of the pattern into p.
void fill_pattern(void* p, size_t n, uint64_t seed, uint64_t start = 0);
// Offset (from p) of the first byte that differs from bytes [start, start + n)
// of the pattern, or kPatternMatches.
size_t check_pattern(const void* p, size_t n, uint64_t seed, uint64_t start = 0);

}  // namespace tcpx::test

#endif  // TCPX_TESTS_SUPPORT_PATTERN_H_
