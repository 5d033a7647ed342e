// The GPU unpacker. Submitting a job is one kernel launch (or, for inline
// bytes, one async copy) and one event record on the unpacker's stream;
// nothing synchronizes per job, and the kernel reads the loadMeta entries
// from host-mapped memory in place, so no descriptor is ever uploaded from
// pageable memory.
#include "cuda/gpu_unpacker.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <new>

#include "cuda/device_scope.h"
#include "cuda/unpack_kernel.cuh"

namespace tcpx::cuda {
namespace {

struct JobRecord {
  uint64_t ticket = UINT64_MAX;  // the ticket this record holds, if any
  cudaEvent_t done = nullptr;
  bool finished = false;         // the event was seen complete
  uint32_t bad = 0;              // copied from the mapped word once finished
};

class GpuUnpacker {
 public:
  int init(int device);
  int submit(const tcpxCudaUnpackJob& job, uint64_t* ticket);
  int submit_copy(void* dst, const void* src, size_t n, uint64_t* ticket);
  int query(uint64_t ticket, int* state, uint32_t* bad);
  int destroy();

 private:
  // Marks `r` finished if its event completed; cudaErrorNotReady otherwise.
  int settle(JobRecord& r, size_t index);
  // The ring record for the next ticket, once its previous job finished
  // (TCPX_CUDA_ERR_BUSY while it runs); mu_ held, the device bound.
  int next_record(JobRecord** r, size_t* index);
  // Records the job's event after the work queued for it and hands out the
  // ticket; mu_ held, the device bound.
  int record(JobRecord& r, uint64_t* ticket);

  std::mutex mu_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  JobRecord ring_[TCPX_CUDA_UNPACK_RING];
  uint32_t* bad_host_ = nullptr;  // TCPX_CUDA_UNPACK_RING mapped words
  uint32_t* bad_dev_ = nullptr;
  uint64_t next_ticket_ = 0;
};

int GpuUnpacker::init(int device) {
  device_ = device;
  DeviceScope scope(device_);
  int e = scope.status();
  if (e != cudaSuccess) return e;
  // Non-blocking: the unpack stream must not serialize with the legacy
  // default stream the application may be using.
  if ((e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)) != cudaSuccess) return e;
  for (auto& r : ring_)
    if ((e = cudaEventCreateWithFlags(&r.done, cudaEventDisableTiming)) != cudaSuccess) return e;
  e = cudaHostAlloc(reinterpret_cast<void**>(&bad_host_), sizeof(uint32_t) * TCPX_CUDA_UNPACK_RING,
                    cudaHostAllocMapped | cudaHostAllocPortable);
  if (e != cudaSuccess) return e;
  std::fill(bad_host_, bad_host_ + TCPX_CUDA_UNPACK_RING, 0u);
  return cudaHostGetDevicePointer(reinterpret_cast<void**>(&bad_dev_), bad_host_, 0);
}

// What CUDA knows of `p`; type cudaMemoryTypeUnregistered when the query
// fails.
cudaPointerAttributes attributes_of(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();  // not sticky; do not let it surface in a later call
    a = cudaPointerAttributes{};
    a.type = cudaMemoryTypeUnregistered;
  }
  return a;
}

bool is_device_memory(const void* p) {
  const cudaMemoryType t = attributes_of(p).type;
  return t == cudaMemoryTypeDevice || t == cudaMemoryTypeManaged;
}

// A device-visible address for `p`: device memory as is, host memory only if
// it is pinned and mapped. Null when the device cannot reach it.
const void* device_view(const void* p) {
  const cudaPointerAttributes a = attributes_of(p);
  if (a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged) return p;
  if (a.type == cudaMemoryTypeHost) return a.devicePointer;
  return nullptr;
}

int GpuUnpacker::settle(JobRecord& r, size_t index) {
  if (r.finished) return cudaSuccess;
  cudaError_t q = cudaEventQuery(r.done);
  if (q != cudaSuccess) return q;
  // The event orders the kernel's stores to the mapped word before this read.
  std::atomic_thread_fence(std::memory_order_acquire);
  r.bad = *static_cast<volatile uint32_t*>(&bad_host_[index]);
  r.finished = true;
  return cudaSuccess;
}

int GpuUnpacker::submit(const tcpxCudaUnpackJob& job, uint64_t* ticket) {
  if (ticket == nullptr || job.meta == nullptr || job.dst == nullptr || job.bounce_buf == nullptr ||
      job.slot < 0 || job.slot >= NET_UNPACK_MAX_SLICES)
    return TCPX_CUDA_ERR_INVALID;
  // cnt decides the launch size, so it is checked here, from host memory.
  const uint64_t count = job.meta->cnt[job.slot];
  if (count > NET_UNPACK_MAX_SLICE_PAGES) return TCPX_CUDA_ERR_BAD_JOB;

  std::lock_guard<std::mutex> lock(mu_);
  DeviceScope scope(device_);
  int e = scope.status();
  if (e != cudaSuccess) return e;
  JobRecord* rp = nullptr;
  size_t index = 0;
  if ((e = next_record(&rp, &index)) != cudaSuccess) return e;
  auto* meta = static_cast<const netUnpackMeta*>(device_view(job.meta));
  const void* src = device_view(job.bounce_buf);
  void* dst = const_cast<void*>(device_view(job.dst));
  if (meta == nullptr) return TCPX_CUDA_ERR_META_UNREACHABLE;
  if (src == nullptr) return TCPX_CUDA_ERR_BOUNCE_UNREACHABLE;
  if (dst == nullptr) return TCPX_CUDA_ERR_DST_UNREACHABLE;

  bad_host_[index] = 0;
  if (count > 0) {
    UnpackArgs a;
    a.entries = meta->mem[job.slot];
    a.count = static_cast<uint32_t>(count);
    a.src = static_cast<const uint8_t*>(src);
    a.src_capacity = job.bounce_capacity;
    a.dst = static_cast<uint8_t*>(dst);
    a.dst_capacity = job.dst_capacity;
    a.bad = bad_dev_ + index;
    // One warp per entry, all entries in one wave: at most 2048 / 8 blocks.
    const unsigned blocks = static_cast<unsigned>((count + kUnpackWarpsPerBlock - 1) / kUnpackWarpsPerBlock);
    unpack_kernel<<<blocks, kUnpackThreadsPerBlock, 0, stream_>>>(a);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
  }
  // An empty slot still records an event so tickets complete in order.
  return record(*rp, ticket);
}

int GpuUnpacker::submit_copy(void* dst, const void* src, size_t n, uint64_t* ticket) {
  if (ticket == nullptr || dst == nullptr || (src == nullptr && n > 0)) return TCPX_CUDA_ERR_INVALID;
  std::lock_guard<std::mutex> lock(mu_);
  DeviceScope scope(device_);
  int e = scope.status();
  if (e != cudaSuccess) return e;
  if (!is_device_memory(dst) && !is_device_memory(src)) return TCPX_CUDA_ERR_DST_UNREACHABLE;
  JobRecord* r = nullptr;
  size_t index = 0;
  if ((e = next_record(&r, &index)) != cudaSuccess) return e;
  bad_host_[index] = 0;
  // With the host side pinned, the copy engine moves the bytes while we go
  // on (unified addressing tells the direction); a copy needs no kernel
  // launch, nor the context switch a kernel costs when another process uses
  // the same GPU.
  if (n > 0 && (e = cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream_)) != cudaSuccess) return e;
  return record(*r, ticket);
}

int GpuUnpacker::next_record(JobRecord** r, size_t* index) {
  *index = next_ticket_ % TCPX_CUDA_UNPACK_RING;
  *r = &ring_[*index];
  if ((*r)->ticket != UINT64_MAX) {
    int s = settle(**r, *index);
    if (s == cudaErrorNotReady) return TCPX_CUDA_ERR_BUSY;
    if (s != cudaSuccess) return s;
  }
  return cudaSuccess;
}

int GpuUnpacker::record(JobRecord& r, uint64_t* ticket) {
  int e = cudaEventRecord(r.done, stream_);
  if (e != cudaSuccess) return e;
  r.ticket = next_ticket_;
  r.finished = false;
  r.bad = 0;
  *ticket = next_ticket_++;
  return cudaSuccess;
}

int GpuUnpacker::query(uint64_t ticket, int* state, uint32_t* bad) {
  if (state == nullptr) return TCPX_CUDA_ERR_INVALID;
  std::lock_guard<std::mutex> lock(mu_);
  const size_t index = ticket % TCPX_CUDA_UNPACK_RING;
  JobRecord& r = ring_[index];
  if (ticket >= next_ticket_ || r.ticket != ticket) return TCPX_CUDA_ERR_UNKNOWN_TICKET;
  DeviceScope scope(device_);
  if (scope.status() != cudaSuccess) return scope.status();
  int s = settle(r, index);
  if (s == cudaErrorNotReady) {
    *state = TCPX_CUDA_JOB_RUNNING;
    return cudaSuccess;
  }
  if (s != cudaSuccess) return s;
  *state = r.bad != 0 ? TCPX_CUDA_JOB_FAILED : TCPX_CUDA_JOB_DONE;
  if (bad != nullptr) *bad = r.bad;
  return cudaSuccess;
}

int GpuUnpacker::destroy() {
  std::lock_guard<std::mutex> lock(mu_);
  DeviceScope scope(device_);
  int first = scope.status();
  // The kernel's work is bounded (<= 2048 fragments of <= 4 KiB), so waiting
  // for the stream cannot hang on a peer.
  if (stream_ != nullptr) {
    int e = cudaStreamSynchronize(stream_);
    if (first == cudaSuccess) first = e;
  }
  for (auto& r : ring_)
    if (r.done != nullptr) cudaEventDestroy(r.done);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  if (bad_host_ != nullptr) cudaFreeHost(bad_host_);
  return first;
}

}  // namespace

int gpu_unpacker_create(int device, void** unpacker) {
  if (unpacker == nullptr) return TCPX_CUDA_ERR_INVALID;
  auto* u = new (std::nothrow) GpuUnpacker();
  if (u == nullptr) return cudaErrorMemoryAllocation;
  int e = u->init(device);
  if (e != cudaSuccess) {
    u->destroy();
    delete u;
    return e;
  }
  *unpacker = u;
  return cudaSuccess;
}

int gpu_unpacker_submit(void* unpacker, const tcpxCudaUnpackJob* job, uint64_t* ticket) {
  if (unpacker == nullptr || job == nullptr) return TCPX_CUDA_ERR_INVALID;
  return static_cast<GpuUnpacker*>(unpacker)->submit(*job, ticket);
}

int gpu_unpacker_submit_copy(void* unpacker, void* dst, const void* src, size_t n, uint64_t* ticket) {
  if (unpacker == nullptr) return TCPX_CUDA_ERR_INVALID;
  return static_cast<GpuUnpacker*>(unpacker)->submit_copy(dst, src, n, ticket);
}

int gpu_unpacker_query(void* unpacker, uint64_t ticket, int* state, uint32_t* bad_entry_flags) {
  if (unpacker == nullptr) return TCPX_CUDA_ERR_INVALID;
  return static_cast<GpuUnpacker*>(unpacker)->query(ticket, state, bad_entry_flags);
}

int gpu_unpacker_destroy(void* unpacker) {
  if (unpacker == nullptr) return TCPX_CUDA_ERR_INVALID;
  auto* u = static_cast<GpuUnpacker*>(unpacker);
  int e = u->destroy();
  delete u;
  return e;
}

}  // namespace tcpx::cuda
