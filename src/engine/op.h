// Op: one wire-level request of the transfer protocol (engine/protocol.h),
// and PostedOp, a user request on its way to it. Owned by the protocol;
// touched only by the progress-token holder.
#ifndef TCPX_ENGINE_OP_H_
#define TCPX_ENGINE_OP_H_

#include <chrono>
#include <cstdint>
#include <optional>

#include "engine/mr_table.h"
#include "tcpx/endpoint.h"

namespace tcpx::engine {

struct Connection;
class SyncWait;

inline constexpr std::chrono::steady_clock::time_point kNoDeadline = std::chrono::steady_clock::time_point::max();

enum class OpKind { kSend, kRecv, kRead, kWrite, kServeRead, kServeWrite };
enum class OpState { kAwaitReply, kTransferring, kAwaitAck };

// One wire-level request: a two-sided send/recv, one piece of a read/write,
// or the target's side of a peer's read/write.
struct Op {
  uint64_t id = 0;  // our id on the wire (replies to us carry it)
  OpKind kind = OpKind::kSend;
  OpState state = OpState::kAwaitReply;
  Connection* conn = nullptr;
  XferId xfer = 0;  // 0 for target-side ops (no user transfer) and blocking calls'
  SyncWait* sync = nullptr;  // a blocking call's, which it ends in instead of xfer
  size_t piece = 0;
  MrInfo mr;
  bool mr_held = false;
  uint8_t* data = nullptr;
  uint64_t size = 0;      // bytes to move (capacity for an unmatched recv)
  uint64_t peer_id = 0;   // the peer's id, for replies we send
  FifoItem remote{};
  uint64_t chunks_left = 0;
  bool incoming = false;  // data flows to us: counts for notification order
  uint64_t incoming_seq = 0;
  bool eager = false;     // data travelled inline on the control connection
  bool staging = false;   // inline bytes on their way to or from device memory (InlineStaging)
  bool acked = false;     // write: WRITE_ACK arrived before our sends finished
  bool owes_reply = false;  // our request is counted in conn->owed
  Status ack_status;
  // Set by cancel() or the deadline (CANCELLED or TIMED_OUT) while the op
  // waits for the peer's reply; the op ends with it when that reply comes,
  // unless the reply says the data already moved (Protocol::cancel_op).
  std::optional<Status> cancel;
  std::chrono::steady_clock::time_point deadline = kNoDeadline;
};


// A user request handed to the protocol (one piece of a transfer).
struct PostedOp {
  OpKind kind = OpKind::kSend;
  ConnId conn = 0;
  XferId xfer = 0;
  SyncWait* sync = nullptr;  // a blocking call's op: no transfer entry (xfer 0)
  size_t piece = 0;
  MrInfo mr;  // acquired by the caller; released when the op ends
  uint8_t* data = nullptr;
  uint64_t size = 0;
  FifoItem remote{};
  // The transfer's deadline (Config::transfer_timeout_ms), if any.
  std::chrono::steady_clock::time_point deadline = kNoDeadline;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_OP_H_
