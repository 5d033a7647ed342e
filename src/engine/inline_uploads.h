// InlineUploads: inline bytes (an eager send's, an inline write's) meant for
// GPU memory, staged in pinned host memory and copied to the device by the
// CUDA unpacker's copy jobs (tcpxCudaOps unpacker_submit_copy).
//
// Without it such bytes were asked for again through the plugin (a CTS round
// trip, a plugin transfer and an unpack kernel), because a synchronous
// cudaMemcpy on the progress thread would wait for every kernel the
// application queued on the legacy stream. A copy job is asynchronous, runs
// on the unpacker's own non-blocking stream and needs no kernel launch.
//
// Staging is a ring of equal slots, one per upload in flight, allocated on
// first use; uploads finish in start order (one stream), so slots free in
// ring order. When no slot is free, the bytes are larger than a slot, or the
// unpacker is busy, start() says no and the caller takes the plugin path: an
// upload is an optimisation, never a new way to fail.
//
// Touched only by the progress-token holder (it lives in Protocol).
#ifndef TCPX_ENGINE_INLINE_UPLOADS_H_
#define TCPX_ENGINE_INLINE_UPLOADS_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/vector_queue.h"
#include "tcpx/status.h"
#include "unpack/unpacker.h"

namespace tcpx::engine {

class InlineUploads {
 public:
  // cuda: the endpoint's CUDA unpacker, or null (then start() always says
  // no). slot_bytes: the largest upload (the eager threshold).
  InlineUploads(unpack::Unpacker* cuda, uint64_t slot_bytes);
  ~InlineUploads();
  InlineUploads(const InlineUploads&) = delete;
  InlineUploads& operator=(const InlineUploads&) = delete;

  // Copies n bytes of src into staging and starts their upload to dst
  // (device memory) for owner. False when it cannot; nothing started then.
  bool start(void* owner, void* dst, const uint8_t* src, size_t n);
  // Appends (owner, result) for each upload that finished, in start order.
  // True when any did.
  bool poll(std::vector<std::pair<void*, Status>>* done);
  // owner ends before its upload finished (its connection failed): the
  // entry stays until the copy is done, since it still reads the staging
  // slot, but reports to nobody.
  void forget(void* owner);
  bool busy() const { return !pending_.empty(); }

 private:
  struct Pending {
    void* owner;
    uint64_t ticket;
  };
  bool ensure_staging();

  unpack::Unpacker* cuda_;
  uint64_t slot_bytes_;
  size_t slots_ = 0;
  uint8_t* staging_ = nullptr;
  bool staging_failed_ = false;
  size_t first_slot_ = 0;  // the slot of pending_.front()
  VectorQueue<Pending> pending_;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_INLINE_UPLOADS_H_
