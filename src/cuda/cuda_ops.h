// CudaOps: the few CUDA services the core needs (pointer kind, copies, mapped
// host memory, device count, the unpack kernel), reached through a table that
// libtcpx_cuda.so exports. The core never links CUDA: it dlopens that library
// when it exists, so every other target builds and runs on hosts without CUDA.
#ifndef TCPX_CUDA_CUDA_OPS_H_
#define TCPX_CUDA_CUDA_OPS_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TCPX_CUDA_OPS_VERSION 1
#define TCPX_CUDA_OPS_SYMBOL "tcpx_cuda_ops_v1"

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
