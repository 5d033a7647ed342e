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
//   PLAN lat size                   -> READY; ping-pong until an empty ping -> DONE ok cpu_s
//   BYE
// cpu_s: the server's CPU seconds (user + system) over the measured part.
#ifndef TCPX_TOOLS_BENCH_CONTROL_H_
#define TCPX_TOOLS_BENCH_CONTROL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tcpx/endpoint.h"

namespace tcpx::bench {

constexpr int kWaitMs = 60000;  // a transfer or answer slower than this is a failure

// Byte j of a `size`-byte transfer's payload.
inline uint8_t pattern(size_t size, size_t j) {
  return static_cast<uint8_t>(j * 131 + size * 7 + (j >> 12));
}

std::string to_hex(const FifoItem& f);
bool from_hex(const std::string& s, FifoItem* f);

Status send_text(Endpoint& ep, ConnId c, const std::string& s);
Status recv_text(Endpoint& ep, ConnId c, std::string* s, int timeout_ms = kWaitMs);

// A registered, page-aligned, zeroed buffer: host memory, or device memory
// (--mem cuda) that the pattern calls reach through copies to and from a
// host mirror. Only the untimed set-up and checks touch the bytes, so the
// timed loops are the same for both kinds.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  Status init(Endpoint& ep, size_t n, bool cuda, int gpu);
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  MrId mr() const { return mr_; }
  bool empty() const { return data_ == nullptr; }

  // Bytes [at, at + n) := the pattern of an n-byte transfer.
  Status fill(size_t at, size_t n);
  // Bytes [0, n) := 0.
  Status zero(size_t n);
  // InternalError naming `what` unless bytes [at, at + n) hold the pattern.
  Status expect_pattern(size_t at, size_t n, const std::string& what);

 private:
  Status to_device(size_t at, size_t n);
  Status from_device(size_t at, size_t n);

  Endpoint* ep_ = nullptr;  // outlives the buffer
  uint8_t* data_ = nullptr;
  void* device_alloc_ = nullptr;  // --mem cuda: what device_alloc returned (data_ is 4096-aligned in it)
  size_t size_ = 0;
  MrId mr_ = 0;
  bool registered_ = false;
  bool cuda_ = false;
  std::vector<uint8_t> mirror_;  // --mem cuda: the host side of the copies
};

}  // namespace tcpx::bench

#endif  // TCPX_TOOLS_BENCH_CONTROL_H_
