// CudaOps: the few CUDA services the core needs (pointer kind, copies, mapped
// host memory, device count, the unpack kernel), reached through a table that
// libtcpx_cuda.so exports. The core never links CUDA: it dlopens that library
// when it exists, so every other target builds and runs on hosts without CUDA.
#ifndef TCPX_CUDA_CUDA_OPS_H_
#define TCPX_CUDA_CUDA_OPS_H_

#include <stddef.h>
#include <stdint.h>

#include "net/nccl_net_v7.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Raised whenever the table changes shape; the loaders refuse any other. */
#define TCPX_CUDA_OPS_VERSION 3
#define TCPX_CUDA_OPS_SYMBOL "tcpx_cuda_ops_v1"

/* One unpack job as the kernel sees it (mirrors tcpx::unpack::UnpackJob). */
typedef struct {
  const netUnpackMeta* meta; /* host-mapped (cudaHostAlloc Mapped or registered) */
  int slot;                  /* 0..NET_UNPACK_MAX_SLICES-1 */
  const void* bounce_buf;    /* device memory or mapped host memory */
  uint64_t bounce_capacity;  /* 0 = unchecked */
  void* dst;                 /* device memory */
  uint64_t dst_capacity;
} tcpxCudaUnpackJob;

/* Jobs one unpacker keeps track of at once (submit says BUSY beyond). */
#define TCPX_CUDA_UNPACK_RING 256

/* Our own error numbers, above every CUDA runtime error number. */
#define TCPX_CUDA_ERR_BUSY 100001
#define TCPX_CUDA_ERR_BAD_JOB 100002
#define TCPX_CUDA_ERR_UNKNOWN_TICKET 100003
#define TCPX_CUDA_ERR_INVALID 100004
/* unpacker_submit's refusals that name the pointer the device cannot reach
 * (host memory that is neither cudaHostAlloc'ed Mapped nor registered
 * Mapped, or a pointer CUDA does not know). */
#define TCPX_CUDA_ERR_META_UNREACHABLE 100005
#define TCPX_CUDA_ERR_BOUNCE_UNREACHABLE 100006
#define TCPX_CUDA_ERR_DST_UNREACHABLE 100007

#define TCPX_CUDA_JOB_DONE 0
#define TCPX_CUDA_JOB_RUNNING 1
#define TCPX_CUDA_JOB_FAILED 2

/* What the kernel found wrong in a slot's entries (OR of these). */
#define TCPX_CUDA_BAD_LEN 0x1        /* len > NET_UNPACK_PAGE_SIZE */
#define TCPX_CUDA_BAD_DST 0x2        /* dst_off + len > dst_capacity */
#define TCPX_CUDA_BAD_SRC 0x4        /* src_off + len > bounce_capacity */

/* Every entry returns 0 on success or a CUDA error number (never aborts). */
typedef struct {
  int version;  /* TCPX_CUDA_OPS_VERSION */
  int (*device_count)(int* count);
  /* *is_device = 1 for device (or managed) memory, 0 for host memory. */
  int (*pointer_kind)(const void* ptr, int* is_device, int* device);
  int (*host_alloc_mapped)(size_t size, void** host_ptr, void** device_ptr);
  int (*host_free)(void* host_ptr);
  int (*memcpy_d2h)(void* dst, const void* src, size_t n);
  int (*memcpy_h2d)(void* dst, const void* src, size_t n);
  const char* (*error_string)(int err);

  /* ---- Appended: the GPU unpacker (the kernel lives in libtcpx_cuda.so) ----
   * One unpacker owns a stream on `device` and a ring of in-flight jobs; the
   * kernel reads loadMeta entries in place from the host-mapped netUnpackMeta.
   * Entries may be called from any thread; calls on one unpacker serialize. */
  int (*unpacker_create)(int device, void** unpacker);
  /* Launches the scatter of `job` asynchronously. *ticket identifies it.
   * Returns TCPX_CUDA_ERR_BUSY when TCPX_CUDA_UNPACK_RING jobs are in flight,
   * TCPX_CUDA_ERR_BAD_JOB for cnt > 2048, TCPX_CUDA_ERR_*_UNREACHABLE for a
   * meta, bounce_buf or dst the device cannot address; *ticket is then
   * untouched. */
  int (*unpacker_submit)(void* unpacker, const tcpxCudaUnpackJob* job,
                         uint64_t* ticket);
  /* *state: TCPX_CUDA_JOB_DONE, TCPX_CUDA_JOB_RUNNING, or TCPX_CUDA_JOB_FAILED
   * with *bad_entry_flags (TCPX_CUDA_BAD_*) saying what the kernel rejected.
   * Returns TCPX_CUDA_ERR_UNKNOWN_TICKET for a ticket never issued or older
   * than the ring remembers; a CUDA error number if the launch itself failed. */
  int (*unpacker_query)(void* unpacker, uint64_t ticket, int* state,
                        uint32_t* bad_entry_flags);
  /* Waits for in-flight jobs, then frees the stream, events and ring. */
  int (*unpacker_destroy)(void* unpacker);

  /* ---- Version 2: device memory for tools and tests (tcpx-bench --mem
   * cuda). The engine never allocates device memory; the application owns
   * it. The calling thread's current device is left as it was. ---- */
  int (*device_alloc)(int device, size_t size, void** ptr);
  int (*device_free)(void* ptr);

  /* ---- Version 3: small transfers to and from device memory inline,
   * without a round trip. Copies n bytes between pinned host memory
   * (host_alloc_mapped) and device memory, either way, on the unpacker's
   * stream, asynchronously, as one more job: *ticket as for unpacker_submit,
   * completed in order with the unpack jobs, polled with unpacker_query.
   * Neither buffer may be touched until then. TCPX_CUDA_ERR_BUSY as for
   * unpacker_submit; TCPX_CUDA_ERR_DST_UNREACHABLE when neither pointer is
   * device memory. ---- */
  int (*unpacker_submit_copy)(void* unpacker, void* dst, const void* src, size_t n, uint64_t* ticket);
} tcpxCudaOps_v1;

/* Exported by libtcpx_cuda.so. */
const tcpxCudaOps_v1* tcpx_cuda_ops_v1(void);

#ifdef __cplusplus
}  /* extern "C" */

namespace tcpx::cuda {
// The loaded table, or nullptr when libtcpx_cuda.so is absent or reports no
// usable device. Loaded once (TCPX_CUDA_LIB overrides the path; default: next
// to the library holding this code, then the loader's search path).
const tcpxCudaOps_v1* ops();
// Why ops() is nullptr, for tcpx-doctor and skip messages.
const char* unavailable_reason();
}  // namespace tcpx::cuda
#endif

#endif  /* TCPX_CUDA_CUDA_OPS_H_ */
