#include "capi/wire.h"

#include <cstring>
#include <string>

namespace tcpx::capi {
namespace {

void put_u8(std::vector<uint8_t>& b, uint8_t v) { b.push_back(v); }
void put_u16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put_u32(std::vector<uint8_t>& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}
void put_u64(std::vector<uint8_t>& b, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

uint32_t get_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint64_t get_u64(const uint8_t* p) {
  return (uint64_t{get_u32(p)} << 32) | get_u32(p + 4);
}

void put_header(std::vector<uint8_t>& b, MsgType type, uint32_t seq,
                uint32_t base, uint32_t count) {
  put_u32(b, kWireMagic);
  put_u8(b, kWireVersion);
  put_u8(b, static_cast<uint8_t>(type));
  put_u16(b, 0);
  put_u32(b, seq);
  put_u32(b, base);
  put_u32(b, count);
}

Status bad(const std::string& why) {
  return ProtocolError("malformed C API message: " + why);
}

}  // namespace

std::vector<uint8_t> encode_requests(uint32_t seq, uint32_t base,
                                     const RequestItem* items, size_t count) {
  std::vector<uint8_t> b;
  b.reserve(kHeaderBytes + count * kRequestItemBytes);
  put_header(b, MsgType::kRequests, seq, base, static_cast<uint32_t>(count));
  for (size_t i = 0; i < count; ++i) {
    put_u8(b, static_cast<uint8_t>(items[i].op));
    for (int k = 0; k < 7; ++k) put_u8(b, 0);
    put_u64(b, items[i].data_ptr);
    put_u64(b, items[i].size);
  }
  return b;
}

std::vector<uint8_t> encode_replies(uint32_t seq, uint32_t base,
                                    const std::vector<ReplyItem>& items) {
  std::vector<uint8_t> b;
  b.reserve(kHeaderBytes + items.size() * kReplyItemBytes);
  put_header(b, MsgType::kReplies, seq, base, static_cast<uint32_t>(items.size()));
  for (const auto& r : items) {
    put_u32(b, r.index);
    put_u8(b, static_cast<uint8_t>(r.op));
    put_u8(b, r.status);
    put_u16(b, 0);
    b.insert(b.end(), r.item.bytes, r.item.bytes + sizeof(r.item.bytes));
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
