// CudaLoader: finds, dlopens and checks libtcpx_cuda.so. tcpx::cuda::ops()
// runs it once per process; tests call it directly with stub libraries to
// exercise every failure without a GPU.
#ifndef TCPX_CUDA_CUDA_LOADER_H_
#define TCPX_CUDA_CUDA_LOADER_H_

#include <string>
#include <vector>

#include "cuda/cuda_ops.h"

namespace tcpx::cuda {

inline constexpr const char* kCudaLibFile = "libtcpx_cuda.so";

struct LoadResult {
  const tcpxCudaOps_v1* ops = nullptr;  // null on failure
  int device_count = 0;
  std::string path;    // the file that was loaded (or tried last)
  std::string reason;  // why ops is null; empty on success
};

// Where libtcpx_cuda.so is looked for, in order: $TCPX_CUDA_LIB alone when
// set; else beside the object holding this code, its ../lib/, the install
// libdir, and finally the bare name for the dynamic loader's search path.
std::vector<std::string> candidate_paths();

// Tries each path in turn; the first that loads, exports a version-1 table
// and reports at least one device wins. The library handle is never closed:
// the CUDA runtime inside it cannot be unloaded safely.
LoadResult load_cuda_ops(const std::vector<std::string>& paths);

}  // namespace tcpx::cuda

#endif  // TCPX_CUDA_CUDA_LOADER_H_
