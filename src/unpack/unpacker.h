// Unpacker: scatters one completed bounce-buffer receive into its destination,
// following the loadMeta list the plugin wrote into netUnpackMeta slot k % 16.
// The CPU path (host destinations, tests) and the CUDA kernel (GPU
// destinations) sit behind this one interface; the engine calls
// irecvConsumed for a receive only after query() reports its job done.
#ifndef TCPX_UNPACK_UNPACKER_H_
#define TCPX_UNPACK_UNPACKER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "net/nccl_net_v7.h"
#include "tcpx/status.h"

namespace tcpx::unpack {

struct UnpackJob {
  // Host-mapped metadata of the recv comm and the slot of this receive. The
  // entries are read in place (no copy, no upload from pageable memory).
  const netUnpackMeta* meta = nullptr;
  int slot = 0;
  const void* bounce_buf = nullptr;  // src_off is relative to this
  // Bytes readable at bounce_buf; an entry reading past it is an error.
  // 0 = unknown (not checked), for callers that do not know the size.
  uint64_t bounce_capacity = 0;
  void* dst = nullptr;               // dst_off is relative to this
  uint64_t dst_capacity = 0;         // an entry ending past this is an error
  bool dst_is_device = false;        // CUDA destination
};

class Unpacker {
 public:
  virtual ~Unpacker() = default;
  // Starts the scatter. Returns at once for the GPU path; the CPU path may
  // copy inline. *ticket identifies the job for query().
  virtual Status submit(const UnpackJob& job, uint64_t* ticket) = 0;
  // OK once the job's bytes are in dst, IN_PROGRESS before, an error if the
  // job failed (bad metadata, CUDA error). Tickets complete in submit order.
  // An error found before the job starts (null fields, cnt > 2048, and on the
  // CPU path every bad entry, since it validates the whole list first) is
  // returned by submit() and no ticket is issued. An error found while the
  // job runs (the GPU kernel's entry checks, a CUDA fault) is returned by
  // query().
  // A ticket's result is kept until a query reported it final or it was
  // released; meanwhile at most kMaxTicketsInFlight - 1 newer tickets are
  // issued, and submit (and submit_copy) answer BUSY beyond: try again
  // later. Never issued or collected tickets may be NOT_FOUND.
  virtual Status query(uint64_t ticket) = 0;
  // The owner of ticket will not query it (its receive was abandoned with
  // its connection): the result need not be kept.
  virtual void release(uint64_t ticket) { (void)ticket; }
  // One more job, in order with the unpacks: copies n bytes between pinned
  // host memory (tcpxCudaOps host_alloc_mapped) and device memory, either
  // way, for small transfers to or from GPU memory that travel inline. Only
  // the CUDA path has it.
  virtual Status submit_copy(void* dst, const void* src, size_t n, uint64_t* ticket) {
    (void)dst, (void)src, (void)n, (void)ticket;
    return Unsupported(std::string(name()) + " unpacker has no copy jobs");
  }
  static constexpr uint64_t kMaxTicketsInFlight = 256;
  virtual const char* name() const = 0;
};

// Copies with memcpy on the calling thread; validates every entry against
// dst_capacity and the slot's count (<= 2048).
std::unique_ptr<Unpacker> make_cpu_unpacker();

// The CUDA kernel path on gpu_idx; UNSUPPORTED when this build or host has no
// CUDA (see src/cuda/cuda_ops.h).
Status make_cuda_unpacker(int gpu_idx, std::unique_ptr<Unpacker>* out);

}  // namespace tcpx::unpack

#endif  // TCPX_UNPACK_UNPACKER_H_
