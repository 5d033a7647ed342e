// libtcpx_cuda.so's exported table: thin wrappers over the CUDA runtime that
// turn every failure into an error number instead of an abort.
#include <cuda_runtime.h>

#include "cuda/call_profile.h"
#include "cuda/cuda_ops.h"
#include "cuda/device_scope.h"
#include "cuda/gpu_unpacker.h"

namespace {

int device_count(int* count) {
  if (count == nullptr) return TCPX_CUDA_ERR_INVALID;
  *count = 0;
  cudaError_t e = cudaGetDeviceCount(count);
  if (e != cudaSuccess) cudaGetLastError();
  return e;
}

int pointer_kind(const void* ptr, int* is_device, int* device) {
  if (is_device == nullptr) return TCPX_CUDA_ERR_INVALID;
  cudaPointerAttributes a{};
  cudaError_t e = cudaPointerGetAttributes(&a, ptr);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear it so it does not surface in a later call
    return e;
  }
  *is_device = (a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged) ? 1 : 0;
  if (device != nullptr) *device = a.device;
  return 0;
}

int host_alloc_mapped(size_t size, void** host_ptr, void** device_ptr) {
  if (host_ptr == nullptr) return TCPX_CUDA_ERR_INVALID;
  // Portable: usable from every device context; Mapped: the kernel reads it.
  cudaError_t e = cudaHostAlloc(host_ptr, size, cudaHostAllocMapped | cudaHostAllocPortable);
  if (e != cudaSuccess) return e;
  if (device_ptr != nullptr) {
    e = cudaHostGetDevicePointer(device_ptr, *host_ptr, 0);
    if (e != cudaSuccess) {
      cudaFreeHost(*host_ptr);
      *host_ptr = nullptr;
      return e;
    }
  }
  return 0;
}

int host_free(void* host_ptr) { return cudaFreeHost(host_ptr); }

int device_alloc(int device, size_t size, void** ptr) {
  if (ptr == nullptr) return TCPX_CUDA_ERR_INVALID;
  *ptr = nullptr;
  tcpx::cuda::DeviceScope scope(device);
  if (scope.status() != cudaSuccess) return scope.status();
  return cudaMalloc(ptr, size);
}

int device_free(void* ptr) { return cudaFree(ptr); }

int memcpy_d2h(void* dst, const void* src, size_t n) {
  return cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost);
}

int memcpy_h2d(void* dst, const void* src, size_t n) {
  return cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice);
}

const char* error_string(int err) {
  switch (err) {
    case TCPX_CUDA_ERR_BUSY: return "unpacker busy: too many jobs in flight";
    case TCPX_CUDA_ERR_BAD_JOB: return "unpack job rejected: the slot's cnt is over 2048";
    case TCPX_CUDA_ERR_META_UNREACHABLE:
      return "unpack job rejected: the device cannot address the unpack metadata (it must be "
             "cudaHostAlloc'ed Mapped or cudaHostRegister'ed Mapped)";
    case TCPX_CUDA_ERR_BOUNCE_UNREACHABLE:
      return "unpack job rejected: the device cannot address the bounce buffer (device memory, or "
             "host memory cudaHostAlloc'ed Mapped or cudaHostRegister'ed Mapped)";
    case TCPX_CUDA_ERR_DST_UNREACHABLE:
      return "unpack job rejected: the device cannot address the destination";
    case TCPX_CUDA_ERR_UNKNOWN_TICKET: return "unknown or expired unpack ticket";
    case TCPX_CUDA_ERR_INVALID: return "invalid argument to libtcpx_cuda";
    default: return cudaGetErrorString(static_cast<cudaError_t>(err));
  }
}

const tcpxCudaOps_v1 kTable = {
    TCPX_CUDA_OPS_VERSION,
    device_count,
    pointer_kind,
    host_alloc_mapped,
    host_free,
    memcpy_d2h,
    memcpy_h2d,
    error_string,
    tcpx::cuda::gpu_unpacker_create,
    tcpx::cuda::gpu_unpacker_submit,
    tcpx::cuda::gpu_unpacker_query,
    tcpx::cuda::gpu_unpacker_destroy,
    device_alloc,
    device_free,
    tcpx::cuda::gpu_unpacker_submit_copy,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const tcpxCudaOps_v1* tcpx_cuda_ops_v1(void) {
  // Both the core and the built-in plugin ask; one answer for the process.
  static const tcpxCudaOps_v1* const table = tcpx::cuda::maybe_profiled(&kTable);
  return table;
}
