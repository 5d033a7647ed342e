// (b) CUDA: whether the optional libtcpx_cuda.so loads and sees a GPU (the
// GPU unpack kernel and GPU memory registration depend on it).
#include <string>

#include "checks.h"
#include "cuda/cuda_ops.h"

namespace tcpx::doctor {

CudaCheck check_cuda(Report& r) {
  CudaCheck c;
  r.section("CUDA");
  const tcpxCudaOps_v1* ops = tcpx::cuda::ops();
  if (ops == nullptr) {
    c.reason = tcpx::cuda::unavailable_reason();
    r.fail("GPU memory unavailable: " + c.reason,
           "on a GPU host: install the NVIDIA driver, build with CUDA (nvcc on PATH) so libtcpx_cuda.so is "
           "built, and keep it next to the binaries or set TCPX_CUDA_LIB; host memory works without it");
    return c;
  }
  ops->device_count(&c.gpus);
  c.available = true;
  r.ok("libtcpx_cuda.so loaded: " + std::to_string(c.gpus) + " GPU(s); GPU unpack kernel available");
  return c;
}

}  // namespace tcpx::doctor
