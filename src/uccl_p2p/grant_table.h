// GrantTable: the regions an engine prepared with uccl_engine_prepare_fifo(),
// and the only way a peer's FifoItem is turned into memory to serve.
//
// A FifoItem leaves the engine inside NIXL metadata and comes back filled in
// by the initiator (uccl_engine_update_fifo writes a raw address and size), so
// nothing in it is trusted: check() accepts it only when its grant id names a
// live grant, its 16-byte secret matches that grant's (random, per grant) and
// [addr, addr+size) lies inside the prepared range. Revoking a registration
// revokes its grants, so an item prepared on it is stale from then on.
#ifndef TCPX_UCCL_P2P_GRANT_TABLE_H_
#define TCPX_UCCL_P2P_GRANT_TABLE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

#include "tcpx/endpoint.h"
#include "uccl_p2p/common.h"

namespace tcpx::uccl_p2p {

using Secret = std::array<uint8_t, 16>;

// The fields of a FifoItem this layer reads, decoded (see common.h).
struct GrantRef {
  uint64_t grant_id = 0;
  Secret secret{};
  uint64_t addr = 0;
  uint32_t size = 0;
};

// What check() hands back: memory of this engine, safe to advertise.
struct GrantedRange {
  MrId mr = 0;  // the tcpx registration
  uint64_t addr = 0;
  uint32_t size = 0;
};

// UCCL FifoItem (::FifoItem, not tcpx::FifoItem) <-> GrantRef. decode() fails on a wrong magic or version.
void encode_token(uint64_t grant_id, const Secret& secret, uint64_t addr, uint64_t len, ::FifoItem* out);
Status decode_token(const ::FifoItem& item, GrantRef* out);

class GrantTable {
 public:
  // A new grant for [base, base+len) of registration `owner` (this layer's
  // uccl_mr_t) backed by tcpx registration `mr`.
  Status add(uint64_t owner, MrId mr, uint64_t base, uint64_t len, ::FifoItem* out);
  // Drops every grant of registration `owner`.
  void revoke(uint64_t owner);
  Status check(const GrantRef& ref, GrantedRange* out) const;

 private:
  struct Grant {
    uint64_t owner = 0;
    MrId mr = 0;
    uint64_t base = 0;
    uint64_t len = 0;
    Secret secret{};
  };
  mutable std::mutex mu_;
  std::map<uint64_t, Grant> grants_;
  uint64_t next_id_ = 1;
};

}  // namespace tcpx::uccl_p2p

#endif  // TCPX_UCCL_P2P_GRANT_TABLE_H_
