#include "engine/fifo_item.h"

#include <cstring>

#include "engine/byte_io.h"

namespace tcpx::engine {

// Layout: u32 magic | u32 version | u64 mr_id | u64 mr_token | u64 offset |
// u64 size | u64 tag | 16 zero bytes.
FifoItem encode_fifo_item(const FifoFields& f) {
  // Built in place: a C API md vector advertises one item per descriptor
  // (a heap vector here cost several allocations each).
  FixedBytes<sizeof(FifoItem::bytes)> b;
  ByteWriter w(&b);
  w.u32(kFifoMagic);
  w.u32(kFifoVersion);
  w.u64(f.mr_id);
  w.u64(f.mr_token);
  w.u64(f.offset);
  w.u64(f.size);
  w.u64(f.tag);
  FifoItem item{};
  std::memcpy(item.bytes, b.data(), b.size());
  return item;
}

Status decode_fifo_item(const FifoItem& item, FifoFields* out) {
  ByteReader r(item.bytes, sizeof item.bytes);
  uint32_t magic = 0, version = 0;
  if (!r.u32(&magic) || magic != kFifoMagic) return InvalidArgument("FifoItem: bad magic (not a FifoItem)");
  if (!r.u32(&version) || version != kFifoVersion)
    return InvalidArgument("FifoItem: unsupported version " + std::to_string(version));
  if (!r.u64(&out->mr_id) || !r.u64(&out->mr_token) || !r.u64(&out->offset) || !r.u64(&out->size) ||
      !r.u64(&out->tag))
    return InvalidArgument("FifoItem: truncated");
  return Status::Ok();
}

}  // namespace tcpx::engine
