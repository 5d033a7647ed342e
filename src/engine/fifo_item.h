// The 64-byte FifoItem a target hands out for one read or write of its
// memory: the MR id plus a per-registration random token (so ids cannot be
// guessed into validity), an offset inside the region, a size and a tag. All
// big-endian; never a raw address.
#ifndef TCPX_ENGINE_FIFO_ITEM_H_
#define TCPX_ENGINE_FIFO_ITEM_H_

#include <cstdint>

#include "tcpx/endpoint.h"

namespace tcpx::engine {

struct FifoFields {
  uint64_t mr_id = 0;
  uint64_t mr_token = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t tag = 0;
};

inline constexpr uint32_t kFifoMagic = 0x46494649;  // "FIFI"
inline constexpr uint32_t kFifoVersion = 1;

FifoItem encode_fifo_item(const FifoFields& f);
// PROTOCOL_ERROR-free: a bad magic/version is INVALID_ARGUMENT (a caller or
// a peer handed us something that is not a FifoItem of ours).
Status decode_fifo_item(const FifoItem& item, FifoFields* out);

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_FIFO_ITEM_H_
