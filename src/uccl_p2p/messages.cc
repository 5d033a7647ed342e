#include "uccl_p2p/messages.h"

#include <cstring>

namespace tcpx::uccl_p2p {
namespace {

constexpr uint32_t kMagic = 0x55503250;  // "UP2P"
constexpr uint8_t kVersion = 1;
constexpr size_t kMaxReason = 512;

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u32(uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<uint8_t>(v >> s));
  }
  void u64(uint64_t v) {
    u32(static_cast<uint32_t>(v >> 32));
    u32(static_cast<uint32_t>(v));
  }
  void bytes(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

// Every read fails (and stays failed) instead of running past the end.
class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& b) : b_(b) {}
  bool u8(uint8_t* v) { return bytes(v, 1); }
  bool u32(uint32_t* v) {
    uint8_t t[4];
    if (!bytes(t, 4)) return false;
    *v = (uint32_t{t[0]} << 24) | (uint32_t{t[1]} << 16) | (uint32_t{t[2]} << 8) | t[3];
    return true;
  }
  bool u64(uint64_t* v) {
    uint32_t hi, lo;
    if (!u32(&hi) || !u32(&lo)) return false;
    *v = (uint64_t{hi} << 32) | lo;
    return true;
  }
  bool bytes(void* p, size_t n) {
    if (n > b_.size() - pos_) return false;
    std::memcpy(p, b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  size_t remaining() const { return b_.size() - pos_; }

 private:
  const std::vector<uint8_t>& b_;
  size_t pos_ = 0;
};

void header(Writer& w, MessageType t) {
  w.u32(kMagic);
  w.u8(kVersion);
  w.u8(static_cast<uint8_t>(t));
}

Status expect_header(Reader& r, MessageType want) {
  uint32_t magic = 0;
  uint8_t version = 0, type = 0;
  if (!r.u32(&magic) || !r.u8(&version) || !r.u8(&type) || magic != kMagic)
    return ProtocolError("uccl_p2p: message without our header");
  if (version != kVersion)
    return ProtocolError("uccl_p2p: message version " + std::to_string(version) + ", expected " +
                         std::to_string(kVersion));
  if (type != static_cast<uint8_t>(want)) return ProtocolError("uccl_p2p: unexpected message type");
  return Status::Ok();
}

Status bad(const char* what) { return ProtocolError(std::string("uccl_p2p: malformed ") + what); }

}  // namespace

std::vector<uint8_t> encode(const GrantRequest& m) {
  Writer w;
  header(w, MessageType::kGrantRequest);
  w.u64(m.request_id);
  w.u32(m.first);
  w.u32(static_cast<uint32_t>(m.refs.size()));
  for (const auto& ref : m.refs) {
    w.u64(ref.grant_id);
    w.bytes(ref.secret.data(), ref.secret.size());
    w.u64(ref.addr);
    w.u32(ref.size);
  }
  return w.take();
}

std::vector<uint8_t> encode(const GrantReply& m) {
  Writer w;
  header(w, MessageType::kGrantReply);
  w.u64(m.request_id);
  w.u32(m.first);
  w.u32(static_cast<uint32_t>(m.code));
  w.u32(m.bad_index);
  std::string reason = m.reason.substr(0, kMaxReason);
  w.u32(static_cast<uint32_t>(reason.size()));
  w.bytes(reason.data(), reason.size());
  w.u32(static_cast<uint32_t>(m.items.size()));
  for (const auto& item : m.items) w.bytes(item.bytes, sizeof(item.bytes));
  return w.take();
}

Status peek_type(const std::vector<uint8_t>& bytes, MessageType* out) {
  Reader r(bytes);
  uint32_t magic = 0;
  uint8_t version = 0, type = 0;
  if (!r.u32(&magic) || !r.u8(&version) || !r.u8(&type) || magic != kMagic)
    return ProtocolError("uccl_p2p: message without our header");
  if (type != static_cast<uint8_t>(MessageType::kGrantRequest) &&
      type != static_cast<uint8_t>(MessageType::kGrantReply))
    return ProtocolError("uccl_p2p: unknown message type " + std::to_string(type));
  *out = static_cast<MessageType>(type);
  return Status::Ok();
}

Status decode(const std::vector<uint8_t>& bytes, GrantRequest* out) {
  Reader r(bytes);
  TCPX_RETURN_IF_ERROR(expect_header(r, MessageType::kGrantRequest));
  uint32_t n = 0;
  if (!r.u64(&out->request_id) || !r.u32(&out->first) || !r.u32(&n)) return bad("GRANT_REQUEST");
  constexpr size_t kRefBytes = 8 + 16 + 8 + 4;
  if (n == 0 || n > kMaxBatch || r.remaining() != n * kRefBytes) return bad("GRANT_REQUEST count");
  out->refs.resize(n);
  for (auto& ref : out->refs) {
    if (!r.u64(&ref.grant_id) || !r.bytes(ref.secret.data(), ref.secret.size()) || !r.u64(&ref.addr) ||
        !r.u32(&ref.size))
      return bad("GRANT_REQUEST ref");
  }
  return Status::Ok();
}

Status decode(const std::vector<uint8_t>& bytes, GrantReply* out) {
  Reader r(bytes);
  TCPX_RETURN_IF_ERROR(expect_header(r, MessageType::kGrantReply));
  uint32_t code = 0, reason_len = 0, n = 0;
  if (!r.u64(&out->request_id) || !r.u32(&out->first) || !r.u32(&code) || !r.u32(&out->bad_index) ||
      !r.u32(&reason_len) || reason_len > kMaxReason)
    return bad("GRANT_REPLY");
  if (!is_status_code(code)) return bad("GRANT_REPLY code");
  out->code = static_cast<StatusCode>(code);
  out->reason.resize(reason_len);
  if (!r.bytes(out->reason.data(), reason_len) || !r.u32(&n) || n > kMaxBatch ||
      r.remaining() != size_t{n} * sizeof(tcpx::FifoItem::bytes))
    return bad("GRANT_REPLY items");
  out->items.resize(n);
  for (auto& item : out->items) r.bytes(item.bytes, sizeof(item.bytes));
  return Status::Ok();
}

}  // namespace tcpx::uccl_p2p
