// The soak's traffic vocabulary, shared by the server and its peers: which
// operations a peer asks for, their random sizes and seeds, and the one-line
// text requests that carry them on the connection's message channel
// (Endpoint::send_message), so the control plane is the engine itself.
#ifndef TCPX_TESTS_SOAK_SOAK_OPS_H_
#define TCPX_TESTS_SOAK_SOAK_OPS_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tcpx/status.h"

namespace tcpx::soak {

// Seen from the peer, which drives every operation:
//   kSend    peer send    -> server recv   (server checks)
//   kRecv    server send  -> peer recv     (peer checks)
//   kWrite   server advertises, peer writes (server checks)
//   kRead    server advertises, peer reads  (peer checks)
//   kWritev / kReadv  the same with 2..4 pieces in one transfer
//   kNotify  peer send_notification          (server checks the text)
enum class OpKind { kSend, kRecv, kWrite, kRead, kWritev, kReadv, kNotify };
inline constexpr int kOpKinds = 7;
const char* op_name(OpKind k);

// Every transfer of one operation fits one region of this size per side.
inline constexpr size_t kRegionBytes = 4u << 20;
inline constexpr size_t kMaxNotificationBytes = 256;

struct Op {
  OpKind kind = OpKind::kSend;
  uint64_t seed = 0;           // piece i carries the pattern of seed + i
  std::vector<size_t> sizes;   // one per piece; notify: the text length
  size_t total() const;
  std::string encode() const;  // "write 1234 4096"
  static Status decode(const std::string& line, Op* out);
};

// A random operation: kinds uniform, sizes log-uniform in [1, 4 MiB] (vector
// pieces share the region, so each is at most 1 MiB).
Op random_op(std::mt19937_64& rng);
// Log-uniform in [1, max].
size_t log_uniform_size(std::mt19937_64& rng, size_t max);

// The notification text of an op: `len` pattern bytes as hex, checkable by
// the server from (seed, len) alone.
std::string notification_text(uint64_t seed, size_t len);

}  // namespace tcpx::soak

#endif  // TCPX_TESTS_SOAK_SOAK_OPS_H_
