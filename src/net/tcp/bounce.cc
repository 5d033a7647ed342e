#include "net/tcp/bounce.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "net/tcp/cuda_ops_loader.h"
#include "net/tcp/plugin_log.h"

namespace tcpx::tcp {

namespace {
constexpr uint64_t kBounceBytes = kSlotBytes * NET_UNPACK_MAX_SLICES;  // 128 MiB
}  // namespace

FragmentLayout::FragmentLayout(uint64_t seq, uint64_t size)
    : slot_(static_cast<int>(seq % NET_UNPACK_MAX_SLICES)), size_(size) {
  // Vary both per request; keep shift <= slot room so 2048 fragments suffice.
  uint64_t shift = (seq * 613 + 1) % kPage;
  if (size + shift > kSlotBytes) shift = size <= kSlotBytes ? kSlotBytes - size : 0;
  shift_ = static_cast<uint32_t>(shift);
  rotate_ = static_cast<uint32_t>((seq * 97) % NET_UNPACK_MAX_SLICE_PAGES);
  uint64_t first = kPage - shift_;
  if (size == 0) count_ = 0;
  else if (size <= first) count_ = 1;
  else count_ = static_cast<uint32_t>(1 + (size - first + kPage - 1) / kPage);
}

uint64_t FragmentLayout::bounce_offset(uint64_t off, uint64_t* contiguous) const {
  uint64_t first = kPage - shift_;
  uint32_t frag;
  uint64_t in_page;
  uint64_t frag_end;
  if (off < first) {
    frag = 0;
    in_page = shift_ + off;
    frag_end = first;
  } else {
    frag = static_cast<uint32_t>(1 + (off - first) / kPage);
    in_page = (off - first) % kPage;
    frag_end = first + static_cast<uint64_t>(frag) * kPage;
  }
  if (frag_end > size_) frag_end = size_;
  *contiguous = frag_end - off;
  return static_cast<uint64_t>(slot_) * kSlotBytes + static_cast<uint64_t>(page_of(frag)) * kPage + in_page;
}

void FragmentLayout::fill_meta(loadMeta* out) const {
  uint64_t off = 0;
  for (uint32_t i = 0; i < count_; ++i) {
    uint64_t len = 0;
    uint64_t src = bounce_offset(off, &len);
    out[i].src_off = static_cast<uint32_t>(src);
    out[i].len = static_cast<uint32_t>(len);
    out[i].dst_off = off;
    off += len;
  }
}

BounceArea::~BounceArea() {
  if (cuda_) {
    const tcpxCudaOps_v1* ops = cuda_ops();
    if (base_ != nullptr) ops->host_free(base_);
    if (meta_ != nullptr) ops->host_free(meta_);
  } else {
    if (base_ != nullptr) munmap(base_, kBounceBytes);
    if (meta_ != nullptr) munmap(meta_, sizeof(netUnpackMeta));
  }
}

bool BounceArea::allocate() {
  if (const tcpxCudaOps_v1* ops = cuda_ops(); ops != nullptr) {
    void* hb = nullptr;
    void* db = nullptr;
    void* hm = nullptr;
    void* dm = nullptr;
    int e1 = ops->host_alloc_mapped(kBounceBytes, &hb, &db);
    int e2 = e1 == 0 ? ops->host_alloc_mapped(sizeof(netUnpackMeta), &hm, &dm) : 0;
    if (e1 == 0 && e2 == 0) {
      // The device handle carries one pointer for both CPU and GPU readers:
      // that holds with unified addressing, which every 64-bit CUDA host has.
      if (hb != db || hm != dm) TCP_WARN("mapped host memory has a different device address; GPU unpack would need it");
      base_ = static_cast<uint8_t*>(hb);
      meta_ = static_cast<netUnpackMeta*>(hm);
      cuda_ = true;
      memset(meta_->cnt, 0, sizeof(meta_->cnt));
      return true;
    }
    if (hb != nullptr) ops->host_free(hb);
    TCP_WARN("host_alloc_mapped of the bounce buffer failed (%d); using unpinned memory", e1 != 0 ? e1 : e2);
  }
  // Reserve address space only: pages cost memory once a message touches them.
  void* b = mmap(nullptr, kBounceBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (b == MAP_FAILED) {
    TCP_WARN("cannot reserve the %llu-byte bounce buffer: %s", static_cast<unsigned long long>(kBounceBytes), strerror(errno));
    return false;
  }
  void* m = mmap(nullptr, sizeof(netUnpackMeta), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    munmap(b, kBounceBytes);
    TCP_WARN("cannot allocate unpack metadata: %s", strerror(errno));
    return false;
  }
  base_ = static_cast<uint8_t*>(b);
  meta_ = static_cast<netUnpackMeta*>(m);  // zero-filled by mmap
  return true;
}

void BounceArea::scatter(const FragmentLayout& l, uint64_t off, const uint8_t* src, uint64_t n) const {
  while (n > 0) {
    uint64_t run = 0;
    uint64_t dst = l.bounce_offset(off, &run);
    if (run > n) run = n;
    memcpy(base_ + dst, src, run);
    src += run;
    off += run;
    n -= run;
  }
}

int BounceArea::iovecs(const FragmentLayout& l, uint64_t off, uint64_t n, iovec* out, int max) const {
  int k = 0;
  while (n > 0 && k < max) {
    uint64_t run = 0;
    uint64_t dst = l.bounce_offset(off, &run);
    if (run > n) run = n;
    out[k].iov_base = base_ + dst;
    out[k].iov_len = run;
    ++k;
    off += run;
    n -= run;
  }
  return k;
}

}  // namespace tcpx::tcp
