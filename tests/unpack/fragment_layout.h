// FragmentLayout: random loadMeta lists for one slot, shared by the CPU and
// GPU unpack tests. Fragments never overlap in the destination (so the result
// does not depend on copy order) and cycle through every pair of source and
// destination alignments 0..15.
#ifndef TCPX_TESTS_UNPACK_FRAGMENT_LAYOUT_H_
#define TCPX_TESTS_UNPACK_FRAGMENT_LAYOUT_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "net/nccl_net_v7.h"

namespace tcpx::unpack::testing {

// Room one slot's fragments may need: 2048 fragments of up to 4 KiB each,
// plus up to 31 bytes of alignment padding per fragment.
inline constexpr uint64_t kSlotRegion = uint64_t{NET_UNPACK_MAX_SLICE_PAGES} * (NET_UNPACK_PAGE_SIZE + 32);

struct SlotLayout {
  std::vector<loadMeta> entries;
  uint64_t dst_bytes = 0;  // highest dst_off + len
};

// `count` fragments with random lengths in [1, 4096] (the first two are the
// extremes 1 and 4096); sources are placed in shuffled order inside
// [src_base, src_base + kSlotRegion).
inline SlotLayout random_layout(std::mt19937_64& rng, uint32_t count, uint64_t src_base) {
  SlotLayout l;
  l.entries.resize(count);
  std::uniform_int_distribution<uint32_t> len_dist(1, NET_UNPACK_PAGE_SIZE);
  uint64_t dst = 0;
  for (uint32_t i = 0; i < count; ++i) {
    loadMeta& m = l.entries[i];
    m.len = i == 0 ? 1 : i == 1 ? NET_UNPACK_PAGE_SIZE : len_dist(rng);
    const uint64_t dst_align = (i / 16) % 16;
    dst = (dst + 15) / 16 * 16 + dst_align;
    m.dst_off = dst;
    dst += m.len;
  }
  l.dst_bytes = dst;
  std::vector<uint32_t> order(count);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), rng);
  uint64_t src = src_base;
  for (uint32_t k = 0; k < count; ++k) {
    loadMeta& m = l.entries[order[k]];
    const uint64_t src_align = order[k] % 16;
    src = (src + 15) / 16 * 16 + src_align;
    m.src_off = static_cast<uint32_t>(src);
    src += m.len;
  }
  return l;
}

inline void install(netUnpackMeta* meta, int slot, const SlotLayout& l) {
  std::copy(l.entries.begin(), l.entries.end(), meta->mem[slot]);
  meta->cnt[slot] = l.entries.size();
}

// What the destination must hold afterwards, computed byte by byte (no
// memcpy, so it does not share a bug with the code under test).
inline void reference_unpack(const SlotLayout& l, const uint8_t* bounce, uint8_t* dst) {
  for (const loadMeta& m : l.entries)
    for (uint32_t b = 0; b < m.len; ++b) dst[m.dst_off + b] = bounce[m.src_off + b];
}

inline void fill_random(std::vector<uint8_t>& v, std::mt19937_64& rng) {
  for (auto& b : v) b = static_cast<uint8_t>(rng());
}

}  // namespace tcpx::unpack::testing

#endif  // TCPX_TESTS_UNPACK_FRAGMENT_LAYOUT_H_
