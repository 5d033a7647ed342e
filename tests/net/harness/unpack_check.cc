#include "harness/unpack_check.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

namespace tcpx::conformance {
namespace {

struct Range {
  uintptr_t begin;
  uintptr_t end;
};

// Readable mappings of this process, from /proc/self/maps. The plugin
// advertises no bounce-region size, so "src_off + len is in range" is checked
// as "the bytes are mapped and readable here", which is what a host-side
// unpack would touch.
std::vector<Range> readable_mappings() {
  std::vector<Range> out;
  FILE* f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr) return out;
  char line[512];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    unsigned long b = 0, e = 0;
    char perms[8] = {};
    if (std::sscanf(line, "%lx-%lx %7s", &b, &e, perms) == 3 && perms[0] == 'r') out.push_back({b, e});
  }
  std::fclose(f);
  return out;
}

bool inside(const std::vector<Range>& maps, uintptr_t b, uintptr_t e) {
  // Adjacent mappings may split one allocation: walk them.
  while (b < e) {
    auto it = std::find_if(maps.begin(), maps.end(), [&](const Range& r) { return r.begin <= b && b < r.end; });
    if (it == maps.end()) return false;
    b = it->end;
  }
  return true;
}

}  // namespace

::testing::AssertionResult slot_metadata_valid(const unpackNetDeviceHandle& h, int slot, uint64_t sent,
                                               bool bounce_is_host) {
  if (h.meta == nullptr) return ::testing::AssertionFailure() << "unpack handle has no meta pointer";
  uint64_t cnt = h.meta->cnt[slot];
  if (cnt > NET_UNPACK_MAX_SLICE_PAGES)
    return ::testing::AssertionFailure() << "cnt[" << slot << "] = " << cnt << " exceeds 2048";
  if (sent > 0 && cnt == 0)
    return ::testing::AssertionFailure() << "cnt[" << slot << "] is 0 for a " << sent << "-byte bounce receive";
  std::vector<Range> maps;
  if (bounce_is_host && cnt > 0) maps = readable_mappings();
  std::vector<std::pair<uint64_t, uint64_t>> pieces;  // (dst_off, len)
  for (uint64_t i = 0; i < cnt; ++i) {
    const loadMeta& m = h.meta->mem[slot][i];
    auto fail = [&]() {
      return ::testing::AssertionFailure() << "slot " << slot << " entry " << i << " {src_off " << m.src_off
                                           << ", len " << m.len << ", dst_off " << m.dst_off << "} of "
                                           << cnt << " for a " << sent << "-byte message: ";
    };
    if (m.len == 0 || m.len > NET_UNPACK_PAGE_SIZE) return fail() << "len must be in 1..4096";
    if (m.dst_off + m.len > sent) return fail() << "ends past the sent size";
    if (bounce_is_host) {
      if (h.bounce_buf == nullptr) return fail() << "bounce_buf is NULL";
      auto b = reinterpret_cast<uintptr_t>(h.bounce_buf) + m.src_off;
      if (!inside(maps, b, b + m.len)) return fail() << "source bytes are not mapped memory";
    }
    pieces.emplace_back(m.dst_off, m.len);
  }
  std::sort(pieces.begin(), pieces.end());
  uint64_t covered = 0;
  for (const auto& [off, len] : pieces) {
    if (off != covered)
      return ::testing::AssertionFailure() << "slot " << slot << ": entries " << (off < covered ? "overlap" : "leave a gap")
                                           << " at byte " << std::min(off, covered) << " of " << sent;
    covered += len;
  }
  if (covered != sent)
    return ::testing::AssertionFailure() << "slot " << slot << ": entries cover " << covered << " bytes, sent "
                                         << sent;
  return ::testing::AssertionSuccess();
}

uint64_t slot_total_bytes(const unpackNetDeviceHandle& h, int slot) {
  uint64_t total = 0;
  uint64_t cnt = std::min<uint64_t>(h.meta->cnt[slot], NET_UNPACK_MAX_SLICE_PAGES);
  for (uint64_t i = 0; i < cnt; ++i) total += h.meta->mem[slot][i].len;
  return total;
}

Status apply_slot(const unpackNetDeviceHandle& h, int slot, void* dst, MemorySpace& space) {
  uint64_t cnt = std::min<uint64_t>(h.meta->cnt[slot], NET_UNPACK_MAX_SLICE_PAGES);
  for (uint64_t i = 0; i < cnt; ++i) {
    const loadMeta& m = h.meta->mem[slot][i];
    TCPX_RETURN_IF_ERROR(space.copy(static_cast<uint8_t*>(dst) + m.dst_off,
                                    static_cast<const uint8_t*>(h.bounce_buf) + m.src_off, m.len));
  }
  return Status::Ok();
}

}  // namespace tcpx::conformance
