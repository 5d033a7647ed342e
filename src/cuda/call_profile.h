// TCPX_CUDA_PROFILE=1: libtcpx_cuda.so times the calls that sit on every
// transfer into or out of GPU memory (unpack submit and query, the
// synchronous copies the built-in plugin makes for CUDA sends), and each
// unpack job from submit to the query that saw it done, and prints,
// when the process exits, how many there were and how long they took, to
// stderr. It tells CUDA's own cost apart from the engine's waiting when small
// GPU transfers are slow. Unset, the plain table is handed out: no clock
// reads.
#ifndef TCPX_CUDA_CALL_PROFILE_H_
#define TCPX_CUDA_CALL_PROFILE_H_

#include "cuda/cuda_ops.h"

namespace tcpx::cuda {

// `plain` when TCPX_CUDA_PROFILE is unset or 0, else a copy of it whose
// per-transfer entries are timed. Call once; `plain` must live forever.
const tcpxCudaOps_v1* maybe_profiled(const tcpxCudaOps_v1* plain);

}  // namespace tcpx::cuda

#endif  // TCPX_CUDA_CALL_PROFILE_H_
