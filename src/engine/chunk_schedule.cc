#include "engine/chunk_schedule.h"

#include <string>

namespace tcpx::engine {

Status ChunkSchedule::make(uint64_t size, uint64_t chunk_bytes, uint32_t channels, uint32_t first_channel,
                           ChunkSchedule* out) {
  if (chunk_bytes < kMinChunkBytes || chunk_bytes > kMaxChunkBytes)
    return InvalidArgument("chunk size " + std::to_string(chunk_bytes) + " outside [4 KiB, 4 MiB]");
  if (channels == 0 || channels > 16 || first_channel >= channels)
    return InvalidArgument("bad channel count " + std::to_string(channels) + " / first " +
                           std::to_string(first_channel));
  out->size_ = size;
  out->chunk_ = chunk_bytes;
  out->channels_ = channels;
  out->first_ = first_channel;
  return Status::Ok();
}

}  // namespace tcpx::engine
