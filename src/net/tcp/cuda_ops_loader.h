// The plugin's own loader for libtcpx_cuda.so (the core's loader lives in
// tcpx_core, which a plugin must not link). The library is optional: without
// it the plugin moves host memory only, and says so when asked for more.
#ifndef TCPX_NET_TCP_CUDA_OPS_LOADER_H_
#define TCPX_NET_TCP_CUDA_OPS_LOADER_H_

#include "cuda/cuda_ops.h"

namespace tcpx::tcp {

// The table, or nullptr (loaded once; TCPX_CUDA_LIB overrides the path, the
// default is libtcpx_cuda.so next to this plugin, then the search path).
const tcpxCudaOps_v1* cuda_ops();
// Why cuda_ops() is nullptr.
const char* cuda_unavailable_reason();

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_CUDA_OPS_LOADER_H_
