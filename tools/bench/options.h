// tcpx-bench command line.
#ifndef TCPX_TOOLS_BENCH_OPTIONS_H_
#define TCPX_TOOLS_BENCH_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sizes.h"

namespace tcpx::bench {

enum class Mode { kSend, kRead, kWrite };

struct Options {
  bool server = false;
  std::string connect;  // client: HOST:PORT (IPv6 as [addr]:port)
  uint16_t port = 0;    // server: 0 = ephemeral (printed)
  int gpu = 0;          // local GPU index: the endpoint's, and --mem cuda's
  int remote_gpu = 0;
  bool cuda_mem = false;  // --mem cuda: this side's buffer in device memory
  Mode mode = Mode::kSend;
  bool latency = false;
  // Empty = the default: kBandwidthSizes, or kLatencySizes with --latency.
  std::vector<size_t> sizes;
  int window = 32;       // transfers in flight (bench/run.sh uses the same)
  int channels = 0;      // 0 = TCPX_CHANNELS / default
  double seconds = 1.0;  // measured time per size (the loop runs until it passes)
  double warmup = 0.2;   // unmeasured run of the same plan before each figure
};

inline const std::vector<size_t> kBandwidthSizes = {4096, 65536, 1 << 20, 16 << 20, 64 << 20};
inline const std::vector<size_t> kLatencySizes = {8};

const char* mode_name(Mode m);
// Parses argv; on error returns false and fills *why (usage included).
// The usage text, printed by --help and after every complaint.
extern const char* const kUsage;
bool parse_options(int argc, char** argv, Options* out, std::string* why);

}  // namespace tcpx::bench

#endif  // TCPX_TOOLS_BENCH_OPTIONS_H_
