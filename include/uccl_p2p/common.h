// common.h of the newer UCCL engine API (libuccl_p2p.so): the FifoItem that
// uccl_engine.h passes around and its (de)serialisation, as NIXL's current UCCL
// backend uses them (std::vector<FifoItem>, deserialize_fifo_item()).
//
// The layout (field names, order, 64 bytes) is UCCL's. What the fields carry
// is ours: a FifoItem made by uccl_engine_prepare_fifo() is a capability for
// one prepared region of the target engine, not an RDMA key:
//   addr, size  the range to move; uccl_engine_update_fifo() overwrites them
//               and the target checks them against the prepared region
//   rkey        magic 0x54435058 ("TCPX"), nmsgs: token format version
//   idx         the target's grant id (never reused within an engine)
//   padding     16 random secret bytes, then 16 zero bytes
// The target never dereferences addr: it serves a request only when the
// grant exists, the secret matches and [addr, addr+size) lies inside the
// prepared region (see docs/nixl.md).
#ifndef UCCL_P2P_COMMON_H_
#define UCCL_P2P_COMMON_H_

#include <cstdint>

struct FifoItem {
  uint64_t addr;
  uint32_t size;
  uint32_t rkey;
  uint32_t nmsgs;
  uint32_t rid;
  uint64_t idx;
  char padding[32];
};
static_assert(sizeof(FifoItem) == 64, "FifoItem size must be 64 bytes");

// Field by field, host byte order, 64 bytes (UCCL's byte layout).
void serialize_fifo_item(FifoItem const& item, char* buf);
void deserialize_fifo_item(char const* buf, FifoItem* item);

#endif  // UCCL_P2P_COMMON_H_
