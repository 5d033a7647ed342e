#include "capi/wire.h"

#include <cstring>
#include <string>

namespace tcpx::capi {
namespace {

// Appends big-endian integers at `at`, which the caller sized beforehand.
uint8_t* put_u8(uint8_t* at, uint8_t v) {
  *at = v;
  return at + 1;
}
uint8_t* put_u16(uint8_t* at, uint16_t v) {
  at[0] = static_cast<uint8_t>(v >> 8);
  at[1] = static_cast<uint8_t>(v);
  return at + 2;
}
uint8_t* put_u32(uint8_t* at, uint32_t v) {
  for (int k = 0; k < 4; ++k) at[k] = static_cast<uint8_t>(v >> (24 - 8 * k));
  return at + 4;
}
uint8_t* put_u64(uint8_t* at, uint64_t v) {
  for (int k = 0; k < 8; ++k) at[k] = static_cast<uint8_t>(v >> (56 - 8 * k));
  return at + 8;
}

uint32_t get_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint64_t get_u64(const uint8_t* p) {
  return (uint64_t{get_u32(p)} << 32) | get_u32(p + 4);
}

uint8_t* put_header(uint8_t* at, MsgType type, uint32_t seq, uint32_t base,
                    uint32_t count) {
  at = put_u32(at, kWireMagic);
  at = put_u8(at, kWireVersion);
  at = put_u8(at, static_cast<uint8_t>(type));
  at = put_u16(at, 0);
  at = put_u32(at, seq);
  at = put_u32(at, base);
  return put_u32(at, count);
}

Status bad(const std::string& why) {
  return ProtocolError("malformed C API message: " + why);
}

}  // namespace

std::vector<uint8_t> encode_requests(uint32_t seq, uint32_t base,
                                     const RequestItem* items, size_t count) {
  std::vector<uint8_t> b(kHeaderBytes + count * kRequestItemBytes, 0);
  uint8_t* at = put_header(b.data(), MsgType::kRequests, seq, base, static_cast<uint32_t>(count));
  for (size_t i = 0; i < count; ++i) {
    put_u8(at, static_cast<uint8_t>(items[i].op));  // then 7 zero bytes
    put_u64(at + 8, items[i].data_ptr);
    at = put_u64(at + 16, items[i].size);
  }
  return b;
}

std::vector<uint8_t> encode_replies(uint32_t seq, uint32_t base,
                                    const std::vector<ReplyItem>& items) {
  std::vector<uint8_t> b(kHeaderBytes + items.size() * kReplyItemBytes, 0);
  uint8_t* at = put_header(b.data(), MsgType::kReplies, seq, base, static_cast<uint32_t>(items.size()));
  for (const auto& r : items) {
    at = put_u32(at, r.index);
    at = put_u8(at, static_cast<uint8_t>(r.op));
    at = put_u8(at, r.status);
    at = put_u16(at, 0);
    std::memcpy(at, r.item.bytes, sizeof(r.item.bytes));
    at += sizeof(r.item.bytes);
  }
  return b;
}

Status decode(const std::vector<uint8_t>& bytes, Batch* out) {
  if (bytes.size() < kHeaderBytes) return bad("shorter than its header");
  const uint8_t* p = bytes.data();
  if (get_u32(p) != kWireMagic) return bad("bad magic");
  if (p[4] != kWireVersion) return bad("unsupported version " + std::to_string(p[4]));
  uint8_t type = p[5];
  if (p[6] != 0 || p[7] != 0) return bad("reserved bits set");
  out->seq = get_u32(p + 8);
  out->base = get_u32(p + 12);
  uint32_t count = get_u32(p + 16);
  if (count == 0 || count > kItemsPerBatch)
    return bad("item count " + std::to_string(count) + " out of range");
  if (uint64_t{out->base} + count > UINT32_MAX) return bad("item index overflows");
  size_t item_bytes;
  if (type == static_cast<uint8_t>(MsgType::kRequests)) {
    item_bytes = kRequestItemBytes;
  } else if (type == static_cast<uint8_t>(MsgType::kReplies)) {
    item_bytes = kReplyItemBytes;
  } else {
    return bad("unknown type " + std::to_string(type));
  }
  if (bytes.size() != kHeaderBytes + size_t{count} * item_bytes)
    return bad("length " + std::to_string(bytes.size()) + " does not match " +
               std::to_string(count) + " items");
  out->type = static_cast<MsgType>(type);
  out->requests.clear();
  out->replies.clear();
  if (out->type == MsgType::kRequests) out->requests.reserve(count);
  else out->replies.reserve(count);
  p += kHeaderBytes;
  for (uint32_t i = 0; i < count; ++i, p += item_bytes) {
    if (out->type == MsgType::kRequests) {
      if (p[0] > static_cast<uint8_t>(ItemOp::kWrite)) return bad("unknown request op");
      for (int k = 1; k < 8; ++k)
        if (p[k] != 0) return bad("request padding not zero");
      out->requests.push_back({static_cast<ItemOp>(p[0]), get_u64(p + 8), get_u64(p + 16)});
    } else {
      ReplyItem r;
      r.index = get_u32(p);
      r.op = static_cast<ItemOp>(p[4]);
      r.status = p[5];
      if (p[4] > static_cast<uint8_t>(ItemOp::kWrite)) return bad("unknown reply op");
      if (p[6] != 0 || p[7] != 0) return bad("reply padding not zero");
      if (r.index < out->base || r.index - out->base != i) return bad("reply index out of order");
      std::memcpy(r.item.bytes, p + 8, sizeof(r.item.bytes));
      out->replies.push_back(r);
    }
  }
  return Status::Ok();
}

}  // namespace tcpx::capi
