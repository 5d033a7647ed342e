// GpuUnpacker: the state behind the unpacker_* entries of the CUDA table: an
// engine-owned stream on one device, a ring of job records (one CUDA event
// and one host-mapped "bad entry" word each), and the launch of the unpack
// kernel. Built only into libtcpx_cuda.so.
#ifndef TCPX_CUDA_GPU_UNPACKER_H_
#define TCPX_CUDA_GPU_UNPACKER_H_

#include <cstddef>
#include <cstdint>

#include "cuda/cuda_ops.h"

namespace tcpx::cuda {

int gpu_unpacker_create(int device, void** unpacker);
int gpu_unpacker_submit(void* unpacker, const tcpxCudaUnpackJob* job, uint64_t* ticket);
int gpu_unpacker_submit_copy(void* unpacker, void* dst, const void* src, size_t n, uint64_t* ticket);
int gpu_unpacker_query(void* unpacker, uint64_t ticket, int* state, uint32_t* bad_entry_flags);
int gpu_unpacker_destroy(void* unpacker);

}  // namespace tcpx::cuda

#endif  // TCPX_CUDA_GPU_UNPACKER_H_
