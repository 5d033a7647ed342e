// The unpack kernel: scatters one slot's loadMeta fragments from the bounce
// buffer into the destination. Included only by cuda_unpacker.cu.
//
// Work split: one warp per fragment (a fragment is at most 4 KiB, so a warp
// of 32 lanes moves it in at most 8 rounds of 16 bytes each), warps striding
// over the slot's entries. Each fragment is copied at the widest width that
// both its source and destination addresses allow; the length only decides
// how many trailing bytes go one at a time, so an odd length does not drag a
// well-aligned fragment down to byte copies.
#ifndef TCPX_CUDA_UNPACK_KERNEL_CUH_
#define TCPX_CUDA_UNPACK_KERNEL_CUH_

#include <cstdint>

#include "cuda/cuda_ops.h"
#include "net/nccl_net_v7.h"

namespace tcpx::cuda {

inline constexpr int kUnpackWarpsPerBlock = 8;
inline constexpr int kUnpackThreadsPerBlock = kUnpackWarpsPerBlock * 32;

struct UnpackArgs {
  const loadMeta* entries;   // device-visible view of meta->mem[slot]
  uint32_t count;            // meta->cnt[slot], checked <= 2048 on the host
  const uint8_t* src;        // bounce buffer (device-visible)
  uint64_t src_capacity;     // 0 = unchecked
  uint8_t* dst;
  uint64_t dst_capacity;
  volatile uint32_t* bad;    // host-mapped word; TCPX_CUDA_BAD_* bits
};

// Copies n units of T with the lanes of one warp, batching loads ahead of
// stores so each lane keeps several memory requests in flight.
template <typename T>
__device__ __forceinline__ void warp_copy(const uint8_t* src, uint8_t* dst, uint32_t n, int lane) {
  const T* s = reinterpret_cast<const T*>(src);
  T* d = reinterpret_cast<T*>(dst);
  constexpr int kBatch = 4;
  uint32_t i = lane;
  for (; i + 32 * (kBatch - 1) < n; i += 32 * kBatch) {
    T v[kBatch];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) v[k] = s[i + 32 * k];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) d[i + 32 * k] = v[k];
  }
  for (; i < n; i += 32) d[i] = s[i];
}

__global__ void __launch_bounds__(kUnpackThreadsPerBlock) unpack_kernel(UnpackArgs a) {
  const int lane = threadIdx.x & 31;
  const uint32_t warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const uint32_t nwarps = (gridDim.x * blockDim.x) >> 5;
  for (uint32_t e = warp; e < a.count; e += nwarps) {
    // One 16-byte load of the entry, straight from host-mapped memory; every
    // lane reads the same address, so it is a single PCIe transaction.
    const loadMeta m = a.entries[e];
    uint32_t bad = 0;
    if (m.len > NET_UNPACK_PAGE_SIZE) bad |= TCPX_CUDA_BAD_LEN;
    // Overflow-safe: compare against the room left rather than adding.
    if (m.dst_off > a.dst_capacity || m.len > a.dst_capacity - m.dst_off) bad |= TCPX_CUDA_BAD_DST;
    if (a.src_capacity != 0 && (m.src_off > a.src_capacity || m.len > a.src_capacity - m.src_off))
      bad |= TCPX_CUDA_BAD_SRC;
    if (bad != 0) {
      // Plain store: racing writers all write nonzero, and any nonzero value
      // fails the job; the exact bits are a diagnostic.
      if (lane == 0) *a.bad = bad;
      continue;
    }
    const uint8_t* s = a.src + m.src_off;
    uint8_t* d = a.dst + m.dst_off;
    const uintptr_t align = reinterpret_cast<uintptr_t>(s) | reinterpret_cast<uintptr_t>(d);
    uint32_t body = 0;
    if ((align & 15) == 0) {
      body = m.len & ~15u;
      warp_copy<uint4>(s, d, body / 16, lane);
    } else if ((align & 7) == 0) {
      body = m.len & ~7u;
      warp_copy<uint2>(s, d, body / 8, lane);
    } else if ((align & 3) == 0) {
      body = m.len & ~3u;
      warp_copy<uint32_t>(s, d, body / 4, lane);
    }
    for (uint32_t i = body + lane; i < m.len; i += 32) d[i] = s[i];
  }
}

}  // namespace tcpx::cuda

#endif  // TCPX_CUDA_UNPACK_KERNEL_CUH_
