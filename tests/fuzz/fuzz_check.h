// What every fuzz target body shares: the invariant check, and a reader that
// cuts a fuzzer's input into the pieces a target needs (a selector byte, a
// length, the rest).
//
// A broken invariant is a crash on purpose: libFuzzer saves the input that
// caused it, and the gtest replay (replay_test.cc) fails with the input's
// file name and the message. These are test programs; the library itself
// never aborts.
#ifndef TCPX_TESTS_FUZZ_FUZZ_CHECK_H_
#define TCPX_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "tcpx/status.h"

namespace tcpx::fuzz {

using Bytes = std::vector<uint8_t>;

[[noreturn]] inline void invariant_broken(const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", file, line, what);
  std::abort();
}

// A decoder's error must carry the code its header documents.
inline void expect_code(const Status& s, StatusCode want, const char* file, int line) {
  if (s.ok() || s.code() == want) return;
  std::fprintf(stderr, "%s:%d: expected %s or OK, got %s\n", file, line, status_code_name(want),
               s.to_string().c_str());
  std::abort();
}

// Takes bytes from the front of an input; past the end it yields zeros and
// empty ranges, so every input is usable.
class InputCursor {
 public:
  InputCursor(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  uint8_t u8() { return pos_ < n_ ? p_[pos_++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>((u8() << 8) | u8()); }
  uint32_t u32() { return (uint32_t{u16()} << 16) | u16(); }
  uint64_t u64() { return (uint64_t{u32()} << 32) | u32(); }
  Bytes take(size_t n) {
    if (n > n_ - pos_) n = n_ - pos_;
    Bytes b(p_ + pos_, p_ + pos_ + n);
    pos_ += n;
    return b;
  }
  Bytes rest() { return take(n_ - pos_); }
  size_t remaining() const { return n_ - pos_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

}  // namespace tcpx::fuzz

#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) ::tcpx::fuzz::invariant_broken(__FILE__, __LINE__, #cond); \
  } while (0)
#define FUZZ_EXPECT_CODE(status, code) ::tcpx::fuzz::expect_code((status), (code), __FILE__, __LINE__)

#endif  // TCPX_TESTS_FUZZ_FUZZ_CHECK_H_
