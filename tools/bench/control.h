// What tcpx-bench's client and server share: the plan protocol on the
// connection's application-message channel, the registered buffer, and the
// data pattern each side checks.
//
// Protocol (text messages; the client drives, one plan at a time):
//   HELLO max                       -> OK | ERR why     (server registers max bytes)
//   PLAN send size window           -> READY; client sends for its duration;
//     STOP n                        -> POSTED p         (p >= n receives posted;
//                                      the client sends p - n more, untimed)
//                                   -> DONE ok cpu_s | DONE error/bad ...
//   PLAN read|write size window     -> READY <fifo hex>; client runs; END -> DONE ok cpu_s
//   PLAN lat size                   -> READY; ping-pong until the stop ping -> DONE ok cpu_s
//   BYE
// cpu_s: the server's CPU seconds (user + system) over the measured part.
#ifndef TCPX_TOOLS_BENCH_CONTROL_H_
#define TCPX_TOOLS_BENCH_CONTROL_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "tcpx/endpoint.h"

namespace tcpx::bench {

constexpr int kWaitMs = 60000;  // a transfer or answer slower than this is a failure

// Byte j of a `size`-byte transfer's payload.
inline uint8_t pattern(size_t size, size_t j) {
  return static_cast<uint8_t>(j * 131 + size * 7 + (j >> 12));
}
// The first byte of the ping that ends a latency plan (never the pattern's).
inline uint8_t stop_marker(size_t size) { return static_cast<uint8_t>(~pattern(size, 0)); }
void fill(uint8_t* p, size_t n);
// Whether bytes [first, n) of an n-byte buffer hold the pattern.
bool verify(const uint8_t* p, size_t n, size_t first = 0);

std::string to_hex(const FifoItem& f);
bool from_hex(const std::string& s, FifoItem* f);

Status send_text(Endpoint& ep, ConnId c, const std::string& s);
Status recv_text(Endpoint& ep, ConnId c, std::string* s, int timeout_ms = kWaitMs);

// A registered, page-aligned, zeroed host buffer.
struct Buffer {
  uint8_t* data = nullptr;
  size_t size = 0;
  MrId mr = 0;
  Status init(Endpoint& ep, size_t n);
  ~Buffer();
};

}  // namespace tcpx::bench

#endif  // TCPX_TOOLS_BENCH_CONTROL_H_
