// A memory registration: the plugin keeps only where the memory is and what
// kind it is, because TCP needs no pinning (CUDA sends stage through their own
// pinned buffer).
#ifndef TCPX_NET_TCP_MEM_REGION_H_
#define TCPX_NET_TCP_MEM_REGION_H_

#include <cstdint>

namespace tcpx::tcp {

inline constexpr uint32_t kMemRegionMagic = 0x4d524547;  // "MREG"

struct MemRegion {
  uint32_t magic = kMemRegionMagic;
  int type = 0;  // NCCL_PTR_HOST or NCCL_PTR_CUDA
  uintptr_t base = 0;
  uint64_t size = 0;

  bool contains(const void* p, uint64_t n) const {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return a >= base && a - base <= size && n <= size - (a - base);
  }
};

inline MemRegion* as_region(void* mh) {
  auto* r = static_cast<MemRegion*>(mh);
  return (r != nullptr && r->magic == kMemRegionMagic) ? r : nullptr;
}

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_MEM_REGION_H_
