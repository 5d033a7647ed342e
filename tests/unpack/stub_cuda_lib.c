/* A stand-in for libtcpx_cuda.so, built three ways (STUB_MODE) so the loader
 * can be tested on a host without CUDA:
 *   1: a good table reporting 2 devices;
 *   2: a table one version ahead of this build;
 *   3: a good table whose device_count fails like a host without a driver. */
#include "cuda/cuda_ops.h"

static int stub_device_count(int* count) {
#if STUB_MODE == 3
  *count = 0;
  return 35;
#else
  *count = 2;
  return 0;
#endif
}

static const char* stub_error_string(int err) {
  return err == 35 ? "stub: driver too old" : "stub: other error";
}

static tcpxCudaOps_v1 table;

__attribute__((visibility("default"))) const tcpxCudaOps_v1* tcpx_cuda_ops_v1(void) {
  table.version = STUB_MODE == 2 ? TCPX_CUDA_OPS_VERSION + 1 : TCPX_CUDA_OPS_VERSION;
  table.device_count = stub_device_count;
  table.error_string = stub_error_string;
  return &table;
}
