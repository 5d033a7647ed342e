#include "support/hex.h"

#include <cstdint>

namespace tcpx::test {
namespace {

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string to_hex(const void* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  const auto* b = static_cast<const uint8_t*>(p);
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kDigits[b[i] >> 4]);
    s.push_back(kDigits[b[i] & 15]);
  }
  return s;
}

bool from_hex(const std::string& s, void* p, size_t n) {
  if (s.size() != 2 * n) return false;
  auto* b = static_cast<uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    int hi = digit_value(s[2 * i]), lo = digit_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    b[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace tcpx::test
