#include "uccl_p2p/grant_table.h"

#include <cstring>
#include <random>
#include <string>

namespace tcpx::uccl_p2p {
namespace {

constexpr uint32_t kTokenMagic = 0x54435058;  // "TCPX"
constexpr uint32_t kTokenVersion = 1;

// Secrets come from the OS's generator (random_device is getrandom on Linux).
Secret fresh_secret() {
  static std::mutex mu;
  static std::random_device rd;
  std::lock_guard<std::mutex> lk(mu);
  Secret s;
  for (size_t i = 0; i < s.size(); i += 4) {
    uint32_t v = rd();
    std::memcpy(s.data() + i, &v, 4);
  }
  return s;
}

// Compares without an early exit, so timing does not tell how much matched.
bool same_secret(const Secret& a, const Secret& b) {
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<uint8_t>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

void encode_token(uint64_t grant_id, const Secret& secret, uint64_t addr, uint64_t len, ::FifoItem* out) {
  std::memset(out, 0, sizeof(*out));
  out->addr = addr;
  out->size = len > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(len);
  out->rkey = kTokenMagic;
  out->nmsgs = kTokenVersion;
  out->idx = grant_id;
  std::memcpy(out->padding, secret.data(), secret.size());
}

Status decode_token(const ::FifoItem& item, GrantRef* out) {
  if (item.rkey != kTokenMagic || item.nmsgs != kTokenVersion)
    return InvalidArgument("FifoItem was not made by uccl_engine_prepare_fifo of tcpx-p2p");
  out->grant_id = item.idx;
  std::memcpy(out->secret.data(), item.padding, out->secret.size());
  out->addr = item.addr;
  out->size = item.size;
  return Status::Ok();
}

Status GrantTable::add(uint64_t owner, MrId mr, uint64_t base, uint64_t len, ::FifoItem* out) {
  Grant g{owner, mr, base, len, fresh_secret()};
  uint64_t id;
  {
    std::lock_guard<std::mutex> lk(mu_);
    id = next_id_++;
    grants_[id] = g;
  }
  encode_token(id, g.secret, base, len, out);
  return Status::Ok();
}

void GrantTable::revoke(uint64_t owner) {
  std::lock_guard<std::mutex> lk(mu_);
  std::erase_if(grants_, [owner](const auto& kv) { return kv.second.owner == owner; });
}

Status GrantTable::check(const GrantRef& ref, GrantedRange* out) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = grants_.find(ref.grant_id);
  // One message for unknown and forged: a prober learns nothing from it.
  if (it == grants_.end() || !same_secret(it->second.secret, ref.secret))
    return NotFound("no such prepared region (forged, or deregistered since)");
  const Grant& g = it->second;
  if (ref.size == 0) return InvalidArgument("empty range");
  // Overflow-safe form of base <= addr && addr + size <= base + len.
  if (ref.addr < g.base || ref.addr - g.base > g.len || ref.size > g.len - (ref.addr - g.base))
    return InvalidArgument("range of " + std::to_string(ref.size) + " bytes at offset " +
                           std::to_string(static_cast<int64_t>(ref.addr - g.base)) +
                           " is outside the prepared region of " + std::to_string(g.len) + " bytes");
  *out = {g.mr, ref.addr, ref.size};
  return Status::Ok();
}

}  // namespace tcpx::uccl_p2p
