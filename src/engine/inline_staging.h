// InlineStaging: pinned host memory between device memory and the control
// connection, so that small transfers to or from GPU memory can travel inline
// (engine/protocol.cc) instead of taking a CTS round trip and the plugin.
//
//   upload    inline bytes that arrived for device memory (an eager send's,
//             an inline write's) are copied into a slot, then to the device
//             by the CUDA unpacker's copy job;
//   download  device memory that should leave inline (a small write from
//             GPU memory, the answer to a small read of it) is copied into a
//             slot by a copy job; once it is done the caller frames the slot.
//
// Copy jobs (tcpxCudaOps unpacker_submit_copy) are cudaMemcpyAsync on the
// unpacker's own non-blocking stream: no synchronous cudaMemcpy on the
// progress thread (it would wait behind every kernel the application queued
// on the legacy stream), and no kernel launch. They finish in submit order,
// so the slots, a ring allocated on first use, free in ring order.
//
// When no slot is free, the bytes are larger than a slot, or the unpacker is
// busy or absent, start_*() says no and the caller takes the plugin path: an
// inline copy is an optimisation, never a new way to fail.
//
// Touched only by the progress-token holder (it lives in Protocol).
#ifndef TCPX_ENGINE_INLINE_STAGING_H_
#define TCPX_ENGINE_INLINE_STAGING_H_

#include <cstddef>
#include <cstdint>

#include "engine/vector_queue.h"
#include "tcpx/status.h"
#include "unpack/unpacker.h"

namespace tcpx::engine {

class InlineStaging {
 public:
  // cuda: the endpoint's CUDA unpacker, or null (then start_*() always say
  // no). slot_bytes: the largest copy (the eager threshold).
  InlineStaging(unpack::Unpacker* cuda, uint64_t slot_bytes);
  ~InlineStaging();
  InlineStaging(const InlineStaging&) = delete;
  InlineStaging& operator=(const InlineStaging&) = delete;

  // Copies n bytes of src (host memory) into a slot and starts their copy to
  // dst (device memory) for owner. False when it cannot; nothing started.
  bool start_upload(void* owner, void* dst, const uint8_t* src, size_t n);
  // Starts copying n bytes of src (device memory) into a slot for owner.
  bool start_download(void* owner, const void* src, size_t n);

  struct Done {
    void* owner;           // null: forgotten
    Status status;         // the copy's result
    const uint8_t* staged; // the slot (a download's bytes), valid until pop_front()
  };
  // The oldest copy, if it finished; false while it runs or none is pending.
  bool front_done(Done* d);
  // Frees the oldest copy's slot, once front_done() reported it.
  void pop_front();
  // owner ends before its copy finished (its connection failed): the entry
  // stays until the copy is done, since it still uses the slot, but reports
  // to nobody.
  void forget(void* owner);
  bool busy() const { return !pending_.empty(); }

 private:
  struct Pending {
    void* owner;
    uint64_t ticket;
  };
  // The slot the next copy gets, or null when none is free (or no staging).
  uint8_t* next_slot(size_t n);
  // Starts the copy job into the slot next_slot() gave; false if refused.
  bool submit(void* owner, void* dst, const void* src, size_t n, const char* what);
  uint8_t* slot(size_t index) const { return staging_ + index * slot_bytes_; }

  unpack::Unpacker* cuda_;
  uint64_t slot_bytes_;
  size_t slots_ = 0;
  uint8_t* staging_ = nullptr;
  bool staging_failed_ = false;
  size_t first_slot_ = 0;  // the slot of pending_.front()
  VectorQueue<Pending> pending_;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_INLINE_STAGING_H_
