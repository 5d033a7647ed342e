// copy_c_string(): hands a std::string to a C caller's buffer of `len` bytes,
// truncated to fit and always NUL-terminated; writes nothing when the buffer
// is null or empty. The C APIs' out-parameters (peer address, failure text).
#ifndef TCPX_COMMON_C_STRING_H_
#define TCPX_COMMON_C_STRING_H_

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

namespace tcpx {

inline void copy_c_string(const std::string& s, char* buf, size_t len) {
  if (buf == nullptr || len == 0) return;
  size_t n = std::min(s.size(), len - 1);
  std::memcpy(buf, s.data(), n);
  buf[n] = '\0';
}

}  // namespace tcpx

#endif  // TCPX_COMMON_C_STRING_H_
