// Hex text for binary blobs that cross a test's line protocol (FifoItems,
// metadata) between processes.
#ifndef TCPX_TESTS_SUPPORT_HEX_H_
#define TCPX_TESTS_SUPPORT_HEX_H_

#include <cstddef>
#include <string>

namespace tcpx::test {

// Lower-case, two digits per byte.
std::string to_hex(const void* p, size_t n);
// Decodes exactly n bytes; false if s is not 2n hex digits.
bool from_hex(const std::string& s, void* p, size_t n);

}  // namespace tcpx::test

#endif  // TCPX_TESTS_SUPPORT_HEX_H_
