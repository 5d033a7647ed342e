#include "sizes.h"

#include <cstdlib>

namespace tcpx::bench {

size_t parse_size(const std::string& s) {
  if (s.empty()) return 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  std::string unit(end);
  size_t mult = 1;
  if (unit == "K" || unit == "k" || unit == "KiB") mult = size_t{1} << 10;
  else if (unit == "M" || unit == "m" || unit == "MiB") mult = size_t{1} << 20;
  else if (unit == "G" || unit == "g" || unit == "GiB") mult = size_t{1} << 30;
  else if (!unit.empty()) return 0;
  return static_cast<size_t>(v) * mult;
}

std::string format_size(size_t b) {
  if (b >= (size_t{1} << 30) && b % (size_t{1} << 30) == 0) return std::to_string(b >> 30) + "G";
  if (b >= (size_t{1} << 20) && b % (size_t{1} << 20) == 0) return std::to_string(b >> 20) + "M";
  if (b >= 1024 && b % 1024 == 0) return std::to_string(b >> 10) + "K";
  return std::to_string(b);
}

}  // namespace tcpx::bench
