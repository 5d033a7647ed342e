// The unpack kernel: scatters one slot's loadMeta fragments from the bounce
// buffer into the destination. Included only by gpu_unpacker.cu.
//
// Work split: one warp per fragment (a fragment is at most 4 KiB, so a warp
// of 32 lanes moves it in at most 8 rounds of 16 bytes each), warps striding
// over the slot's entries.
//
// The bounce buffer may be host memory (the built-in plugin's, mapped into
// the device), where every load waits for a PCIe round trip of about a
// microsecond, so what matters is how many loads each lane has in flight.
// A fragment whose source and destination are both 16-byte aligned is
// copied in uint4s, eight loads per lane issued before their stores. Any
// other fragment (an odd offset on either side; the built-in plugin shifts
// each message's start within its page, and devmem TCP fragments end where
// the packets did) is staged through shared memory: the warp reads the
// aligned 16-byte words that cover the source with the same batched loads,
// then writes the destination in uint4s assembled from the staged bytes,
// with at most 15 single bytes at either end. A byte-at-a-time copy of such
// a fragment from host memory took about 90 us for 4 KiB on an H200 (one
// dependent PCIe read per 32 bytes per lane), against about 13 us for a
// whole job when aligned.
#ifndef TCPX_CUDA_UNPACK_KERNEL_CUH_
#define TCPX_CUDA_UNPACK_KERNEL_CUH_

#include <cstdint>

#include "cuda/cuda_ops.h"
#include "net/nccl_net_v7.h"

namespace tcpx::cuda {

inline constexpr int kUnpackWarpsPerBlock = 8;
inline constexpr int kUnpackThreadsPerBlock = kUnpackWarpsPerBlock * 32;
// Per warp: a 4 KiB fragment starting up to 15 bytes past an aligned word
// spans at most 4096 + 30 bytes of aligned words (4128); 16 more so that
// assembling the last uint4 may read one word past the staged ones.
inline constexpr int kStageBytes = NET_UNPACK_PAGE_SIZE + 48;

struct UnpackArgs {
  const loadMeta* entries;   // device-visible view of meta->mem[slot]
  uint32_t count;            // meta->cnt[slot], checked <= 2048 on the host
  const uint8_t* src;        // bounce buffer (device-visible)
  uint64_t src_capacity;     // 0 = unchecked
  uint8_t* dst;
  uint64_t dst_capacity;
  volatile uint32_t* bad;    // host-mapped word; TCPX_CUDA_BAD_* bits
};

// Copies n uint4s with the lanes of one warp, issuing kBatch loads per lane
// before their stores, so each lane keeps that many requests in flight (a
// full 4 KiB is one batch).
__device__ __forceinline__ void warp_copy16(const uint4* s, uint4* d, uint32_t n, uint32_t lane) {
  constexpr int kBatch = 8;
  uint32_t i = lane;
  for (; i + 32 * (kBatch - 1) < n; i += 32 * kBatch) {
    uint4 v[kBatch];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) v[k] = s[i + 32 * k];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) d[i + 32 * k] = v[k];
  }
  for (; i < n; i += 32) d[i] = s[i];
}

// len bytes from s to d, not both 16-byte aligned, through `stage` (this
// warp's kStageBytes of shared memory, 16-byte aligned). Reads the aligned
// words that hold the source: they lie in the same allocation as the source
// bytes, since allocations are at least 16-byte aligned.
__device__ __forceinline__ void staged_copy(const uint8_t* s, uint8_t* d, uint32_t len, uint8_t* stage, uint32_t lane) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(s) & ~uintptr_t{15};
  const uintptr_t end = (reinterpret_cast<uintptr_t>(s) + len + 15) & ~uintptr_t{15};
  warp_copy16(reinterpret_cast<const uint4*>(first), reinterpret_cast<uint4*>(stage),
              static_cast<uint32_t>((end - first) / 16), lane);
  __syncwarp();
  const uint8_t* from = stage + (reinterpret_cast<uintptr_t>(s) - first);  // source byte 0, staged
  // Head: single bytes until the destination is 16-byte aligned.
  const uint32_t head = min(len, static_cast<uint32_t>((16 - (reinterpret_cast<uintptr_t>(d) & 15)) & 15));
  if (lane < head) d[lane] = from[lane];
  // Body: aligned uint4 stores, each from five aligned staged words and
  // funnel shifts by the staged position's misalignment.
  const uint32_t body = (len - head) / 16;
  const uint32_t pos = static_cast<uint32_t>(from + head - stage);
  const uint32_t* words = reinterpret_cast<const uint32_t*>(stage) + pos / 4;
  const uint32_t shift = (pos & 3) * 8;
  uint4* out = reinterpret_cast<uint4*>(d + head);
  for (uint32_t i = lane; i < body; i += 32) {
    const uint32_t* w = words + 4 * i;
    out[i] = make_uint4(__funnelshift_r(w[0], w[1], shift), __funnelshift_r(w[1], w[2], shift),
                        __funnelshift_r(w[2], w[3], shift), __funnelshift_r(w[3], w[4], shift));
  }
  // Tail: the last 0..15 bytes.
  const uint32_t done = head + body * 16;
  if (lane < len - done) d[done + lane] = from[done + lane];
  __syncwarp();  // the stage is reused by this warp's next fragment
}

__global__ void __launch_bounds__(kUnpackThreadsPerBlock) unpack_kernel(UnpackArgs a) {
  __shared__ __align__(16) uint8_t stages[kUnpackWarpsPerBlock][kStageBytes];
  const uint32_t lane = threadIdx.x & 31;
  const uint32_t warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const uint32_t nwarps = (gridDim.x * blockDim.x) >> 5;
  uint8_t* stage = stages[threadIdx.x >> 5];
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
    if (((reinterpret_cast<uintptr_t>(s) | reinterpret_cast<uintptr_t>(d)) & 15) == 0) {
      const uint32_t body = m.len / 16;
      warp_copy16(reinterpret_cast<const uint4*>(s), reinterpret_cast<uint4*>(d), body, lane);
      if (lane < m.len - body * 16) d[body * 16 + lane] = s[body * 16 + lane];
    } else {
      staged_copy(s, d, m.len, stage, lane);
    }
  }
}

}  // namespace tcpx::cuda

#endif  // TCPX_CUDA_UNPACK_KERNEL_CUH_
