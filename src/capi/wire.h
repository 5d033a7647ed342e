// The C API's own messages, carried as Endpoint application messages on a
// connection's control channel. Never raw structs: a fixed header in network
// byte order, then exactly `count` fixed-size items. A message that does not
// parse is a protocol error and closes that connection only.
//
//   header (20 bytes): magic u32, version u8, type u8, reserved u16 (0),
//                      seq u32, base u32, count u32
//   REQUESTS item (24): op u8, pad[7], data_ptr u64, size u64
//   REPLIES  item (72): index u32, op u8, status u8, pad u16, FifoItem[64]
//
// `seq` numbers the md vector a batch belongs to; `base` is the index of the
// first item inside that vector (a large vector travels in several batches).
#ifndef TCPX_CAPI_WIRE_H_
#define TCPX_CAPI_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tcpx/endpoint.h"
#include "tcpx/status.h"

namespace tcpx::capi {

inline constexpr uint32_t kWireMagic = 0x55434150;  // "UCAP"
inline constexpr uint8_t kWireVersion = 1;
inline constexpr size_t kHeaderBytes = 20;
inline constexpr size_t kRequestItemBytes = 24;
inline constexpr size_t kReplyItemBytes = 72;
// Items per message, so a reply batch stays well under the 1 MiB message cap.
inline constexpr uint32_t kItemsPerBatch = 8192;

// Both sides cut a vector into growing pieces (16, 32, 64, ... items, at most
// kItemsPerBatch): NIXL polls FIFO item 0 with a budget of 5 tries 1 ms apart,
// and a 1,000-item vector sent whole waits for all its items to be encoded,
// read, decoded and served before item 0 can answer. Calls fn(first, n) for
// each piece in order; stops at the first error.
template <class Fn>
Status for_each_piece(size_t count, Fn&& fn) {
  size_t piece = 16;
  for (size_t first = 0; first < count;) {
    size_t n = piece < count - first ? piece : count - first;
    TCPX_RETURN_IF_ERROR(fn(first, n));
    first += n;
    piece = piece * 2 < kItemsPerBatch ? piece * 2 : kItemsPerBatch;
  }
  return Status::Ok();
}

enum class MsgType : uint8_t { kRequests = 1, kReplies = 2 };
enum class ItemOp : uint8_t { kRead = 0, kWrite = 1 };

struct RequestItem {
  ItemOp op = ItemOp::kRead;
  uint64_t data_ptr = 0;
  uint64_t size = 0;
};

struct ReplyItem {
  uint32_t index = 0;
  ItemOp op = ItemOp::kRead;
  uint8_t status = 0;  // a tcpx::StatusCode; 0 = advertised
  FifoItem item{};
};

struct Batch {
  MsgType type = MsgType::kRequests;
  uint32_t seq = 0;
  uint32_t base = 0;
  std::vector<RequestItem> requests;  // type kRequests
  std::vector<ReplyItem> replies;     // type kReplies
};

std::vector<uint8_t> encode_requests(uint32_t seq, uint32_t base,
                                     const RequestItem* items, size_t count);
std::vector<uint8_t> encode_replies(uint32_t seq, uint32_t base,
                                    const std::vector<ReplyItem>& items);
// PROTOCOL_ERROR for anything that is not exactly one well-formed message.
Status decode(const std::vector<uint8_t>& bytes, Batch* out);

}  // namespace tcpx::capi

#endif  // TCPX_CAPI_WIRE_H_
