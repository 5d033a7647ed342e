// Byte counts on bench command lines and in their output: "4K", "16M", "1G"
// or plain bytes. Shared by tcpx-bench, tcpx-capi-bench and
// tcpx_unpack_bench.
#ifndef TCPX_TOOLS_BENCH_SIZES_H_
#define TCPX_TOOLS_BENCH_SIZES_H_

#include <cstddef>
#include <string>

namespace tcpx::bench {

// "4K" -> 4096, "16M" -> 16 MiB, "1G", or plain bytes. 0 on error.
size_t parse_size(const std::string& s);
// The shortest of those forms that is exact.
std::string format_size(size_t bytes);

}  // namespace tcpx::bench

#endif  // TCPX_TOOLS_BENCH_SIZES_H_
