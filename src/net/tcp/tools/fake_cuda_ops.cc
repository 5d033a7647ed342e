// A stand-in for libtcpx_cuda.so on hosts without a GPU: "device" memory is
// ordinary host memory and copies are memcpy. It lets the plugin's CUDA paths
// (staged sends, bounce receives into host-mapped memory) run in self-checks
// via TCPX_CUDA_LIB=.../libtcpx_plugin_fake_cuda.so. Never installed.
#include <cstdlib>
#include <cstring>

#include "cuda/cuda_ops.h"

namespace {

int device_count(int* count) {
  *count = 1;
  return 0;
}
int pointer_kind(const void*, int* is_device, int* device) {
  *is_device = 0;
  *device = -1;
  return 0;
}
int host_alloc_mapped(size_t size, void** host_ptr, void** device_ptr) {
  void* p = nullptr;
  if (posix_memalign(&p, 4096, size) != 0) return 2;  // cudaErrorMemoryAllocation
  memset(p, 0, size);
  *host_ptr = p;
  *device_ptr = p;
  return 0;
}
int host_free(void* p) {
  free(p);
  return 0;
}
int copy(void* dst, const void* src, size_t n) {
  memcpy(dst, src, n);
  return 0;
}
const char* error_string(int) { return "fake CUDA error"; }

// No unpacker: the plugin never uses it (its callers unpack).
const tcpxCudaOps_v1 kOps = {
    .version = TCPX_CUDA_OPS_VERSION,
    .device_count = device_count,
    .pointer_kind = pointer_kind,
    .host_alloc_mapped = host_alloc_mapped,
    .host_free = host_free,
    .memcpy_d2h = copy,
    .memcpy_h2d = copy,
    .error_string = error_string,
    .unpacker_create = nullptr,
    .unpacker_submit = nullptr,
    .unpacker_query = nullptr,
    .unpacker_destroy = nullptr,
    .device_alloc = nullptr,
    .device_free = nullptr,
    .unpacker_submit_copy = nullptr,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const tcpxCudaOps_v1* tcpx_cuda_ops_v1(void) { return &kOps; }
