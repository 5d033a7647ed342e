// The receive side's TCPX emulation: a bounce buffer with one 8 MiB region per
// unpack slot, the host-mapped netUnpackMeta, and the fragment layout of a
// message inside its slot.
//
// The layout is scattered on purpose so that a caller who assumes the
// fragments are contiguous or page aligned fails its tests here rather than on
// real TCPX: fragment 0 is shorter than a page by a per-request shift (so
// later dst_off values are not page aligned and fragment 0 starts at an odd
// offset inside its page), and fragment i sits on page perm(i) of the slot, a
// per-request bijection that is never the identity.
#ifndef TCPX_NET_TCP_BOUNCE_H_
#define TCPX_NET_TCP_BOUNCE_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "net/nccl_net_v7.h"

namespace tcpx::tcp {

inline constexpr uint64_t kPage = NET_UNPACK_PAGE_SIZE;
inline constexpr uint64_t kSlotBytes = kPage * NET_UNPACK_MAX_SLICE_PAGES;  // 8 MiB
inline constexpr uint64_t kMaxBounceMessage = kSlotBytes;

// Where the fragments of one message go. Pure arithmetic: cheap to copy.
class FragmentLayout {
 public:
  FragmentLayout() = default;
  // `seq` is the irecv's index on its comm (slot = seq % 16).
  FragmentLayout(uint64_t seq, uint64_t size);

  int slot() const { return slot_; }
  uint32_t count() const { return count_; }
  // Offset (from the bounce buffer base) of message byte `off`; the bytes
  // up to the end of its fragment are contiguous from there.
  uint64_t bounce_offset(uint64_t off, uint64_t* contiguous) const;
  // Writes meta entries for every fragment.
  void fill_meta(loadMeta* out) const;

 private:
  uint32_t page_of(uint32_t frag) const {
    return (frag * kStride + rotate_) % NET_UNPACK_MAX_SLICE_PAGES;
  }
  // Odd, so i -> i * kStride mod 2048 is a bijection; not 1, so not identity.
  static constexpr uint32_t kStride = 1237;
  int slot_ = 0;
  uint64_t size_ = 0;
  uint32_t shift_ = 0;  // bytes fragment 0 is short of a page
  uint32_t rotate_ = 0;
  uint32_t count_ = 0;
};

// The per-recv-comm memory: bounce buffer + metadata, host-mapped through the
// CUDA ops when they exist (so a GPU kernel can read both), otherwise plain
// lazily-committed memory.
class BounceArea {
 public:
  BounceArea() = default;
  BounceArea(const BounceArea&) = delete;
  BounceArea& operator=(const BounceArea&) = delete;
  ~BounceArea();
  // False (logged) when memory cannot be had.
  bool allocate();

  uint8_t* base() const { return base_; }
  netUnpackMeta* meta() const { return meta_; }

  // Copies message bytes [off, off+n) from `src` to where the layout puts them.
  void scatter(const FragmentLayout& l, uint64_t off, const uint8_t* src, uint64_t n) const;
  // Up to `max` iovecs covering message bytes [off, off+n); returns the count.
  int iovecs(const FragmentLayout& l, uint64_t off, uint64_t n, iovec* out, int max) const;

 private:
  uint8_t* base_ = nullptr;
  netUnpackMeta* meta_ = nullptr;
  bool cuda_ = false;
};

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_BOUNCE_H_
