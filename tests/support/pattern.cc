#include "support/pattern.h"

#include <cstring>

namespace tcpx::test {
namespace {

// Word w of the pattern (a splitmix64-style mix of seed and w); byte i is
// byte (i % 8) of word (i / 8), so whole words are filled and compared at once.
inline uint64_t word_at(uint64_t seed, uint64_t w) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + w * 0xbf58476d1ce4e5b9ull + 1;
  z ^= z >> 31;
  z *= 0x94d049bb133111ebull;
  z ^= z >> 29;
  return z;
}

inline uint64_t load_le(const uint8_t* b) {
  uint64_t w = 0;
  for (int k = 7; k >= 0; --k) w = w << 8 | b[k];
  return w;
}

}  // namespace

uint64_t pattern_word(uint64_t seed, uint64_t w) { return word_at(seed, w); }

uint8_t pattern_byte(uint64_t seed, uint64_t i) { return static_cast<uint8_t>(word_at(seed, i >> 3) >> (8 * (i & 7))); }

void fill_pattern(void* p, size_t n, uint64_t seed, uint64_t start) {
  auto* b = static_cast<uint8_t*>(p);
  size_t i = 0;
  for (; i < n && ((start + i) & 7) != 0; ++i) b[i] = pattern_byte(seed, start + i);
  for (; i + 8 <= n; i += 8) {
    uint64_t w = word_at(seed, (start + i) >> 3);
    for (int k = 0; k < 8; ++k) b[i + k] = static_cast<uint8_t>(w >> (8 * k));
  }
  for (; i < n; ++i) b[i] = pattern_byte(seed, start + i);
}

size_t check_pattern(const void* p, size_t n, uint64_t seed, uint64_t start) {
  const auto* b = static_cast<const uint8_t*>(p);
  size_t i = 0;
  for (; i < n && ((start + i) & 7) != 0; ++i)
    if (b[i] != pattern_byte(seed, start + i)) return i;
  for (; i + 8 <= n; i += 8)
    if (load_le(b + i) != word_at(seed, (start + i) >> 3))
      for (size_t k = 0; k < 8; ++k)
        if (b[i + k] != pattern_byte(seed, start + i + k)) return i + k;
  for (; i < n; ++i)
    if (b[i] != pattern_byte(seed, start + i)) return i;
  return kPatternMatches;
}

}  // namespace tcpx::test
