// ChunkSchedule: how one transfer is cut into plugin requests. Chunk i covers
// [i*chunk, min((i+1)*chunk, size)) and goes to channel (first + i) % C, in
// order i on that channel. Sender and receiver compute the same list from the
// (size, chunk_bytes, channels, first_channel) carried in the DATA frame, so
// nothing per chunk crosses the control channel.
#ifndef TCPX_ENGINE_CHUNK_SCHEDULE_H_
#define TCPX_ENGINE_CHUNK_SCHEDULE_H_

#include <cstdint>

#include "tcpx/status.h"

namespace tcpx::engine {

// TCPX: at most 2048 loadMeta entries of <= 4 KiB per request.
inline constexpr uint64_t kMaxChunkBytes = 4ull << 20;
inline constexpr uint64_t kMinChunkBytes = 4096;

struct Chunk {
  uint32_t channel = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

class ChunkSchedule {
 public:
  // INVALID_ARGUMENT (for a peer's DATA frame: the caller maps it to a
  // protocol error) if chunk_bytes or channels are out of range.
  static Status make(uint64_t size, uint64_t chunk_bytes, uint32_t channels, uint32_t first_channel,
                     ChunkSchedule* out);
  uint64_t count() const { return chunk_ == 0 ? 0 : (size_ + chunk_ - 1) / chunk_; }
  Chunk at(uint64_t i) const {
    Chunk c;
    c.channel = static_cast<uint32_t>((first_ + i) % channels_);
    c.offset = i * chunk_;
    c.size = (size_ - c.offset < chunk_) ? size_ - c.offset : chunk_;
    return c;
  }

 private:
  uint64_t size_ = 0;
  uint64_t chunk_ = 0;
  uint32_t channels_ = 1;
  uint32_t first_ = 0;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_CHUNK_SCHEDULE_H_
