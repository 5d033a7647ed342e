// tcpx-bench command line.
#ifndef TCPX_TOOLS_BENCH_OPTIONS_H_
#define TCPX_TOOLS_BENCH_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tcpx::bench {

enum class Mode { kSend, kRead, kWrite };

struct Options {
  bool server = false;
  std::string connect;  // client: HOST:PORT (IPv6 as [addr]:port)
  uint16_t port = 0;    // server: 0 = ephemeral (printed)
  int gpu = 0;          // local GPU index (host memory is used either way)
  int remote_gpu = 0;
  Mode mode = Mode::kSend;
  bool latency = false;
  std::vector<size_t> sizes = {4096, 65536, 1 << 20, 16 << 20, 64 << 20};
  int window = 32;       // transfers in flight (bench/run.sh uses the same)
  int channels = 0;      // 0 = TCPX_CHANNELS / default
  long iters = 0;        // 0 = derived from --seconds
  double seconds = 1.0;  // per size
};

const char* mode_name(Mode m);
// Parses argv; on error returns false and fills *why (usage included).
// The usage text, printed by --help and after every complaint.
extern const char* const kUsage;
bool parse_options(int argc, char** argv, Options* out, std::string* why);
// "4K" -> 4096, "16M" -> 16 MiB, "1G", or plain bytes. 0 on error.
size_t parse_size(const std::string& s);
std::string format_size(size_t bytes);

}  // namespace tcpx::bench

#endif  // TCPX_TOOLS_BENCH_OPTIONS_H_
