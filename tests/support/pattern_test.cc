// The shared pattern: any slice checks alone, the first mismatch is found
// exactly, different seeds differ; hex round-trips and refuses non-hex.
#include <gtest/gtest.h>

#include <vector>

#include "support/hex.h"
#include "support/pattern.h"

namespace tcpx::test {
namespace {

TEST(Pattern, AnySliceMatchesTheWholeBuffer) {
  std::vector<uint8_t> whole(1000), slice(333);
  fill_pattern(whole.data(), whole.size(), 42);
  fill_pattern(slice.data(), slice.size(), 42, 101);
  EXPECT_EQ(check_pattern(whole.data() + 101, slice.size(), 42, 101), kPatternMatches);
  EXPECT_EQ(check_pattern(slice.data(), slice.size(), 42, 101), kPatternMatches);
  EXPECT_EQ(0, memcmp(whole.data() + 101, slice.data(), slice.size()));
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(whole[i], pattern_byte(42, i)) << i;
}

TEST(Pattern, FirstMismatchOffsetIsExact) {
  std::vector<uint8_t> b(4096);
  fill_pattern(b.data(), b.size(), 7, 3);
  for (size_t bad : {size_t{0}, size_t{5}, size_t{8}, size_t{2049}, size_t{4095}}) {
    std::vector<uint8_t> c = b;
    c[bad] ^= 0x40;
    if (bad + 100 < c.size()) c[bad + 100] ^= 0x01;  // a later mismatch must not be the one reported
    EXPECT_EQ(check_pattern(c.data(), c.size(), 7, 3), bad);
  }
  EXPECT_NE(check_pattern(b.data(), b.size(), 8, 3), kPatternMatches);
  EXPECT_EQ(check_pattern(b.data(), 0, 8, 3), kPatternMatches);
}

TEST(Hex, RoundTripAndRejects) {
  uint8_t in[5] = {0x00, 0x7f, 0x80, 0xab, 0xff}, out[5] = {};
  std::string h = to_hex(in, 5);
  EXPECT_EQ(h, "007f80abff");
  ASSERT_TRUE(from_hex(h, out, 5));
  EXPECT_EQ(0, memcmp(in, out, 5));
  EXPECT_FALSE(from_hex("007f80abf", out, 5));
  EXPECT_FALSE(from_hex("007f80abzz", out, 5));
}

}  // namespace
}  // namespace tcpx::test
