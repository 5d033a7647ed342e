// The CPU unpacker's reading of a loadMeta list (unpack/unpacker.h): in
// bounce mode a plugin (Google's, in production) writes these entries from
// what arrived, and the engine scatters by them.
//
// Input: i8 slot, u16 destination size, u16 bounce size (1..16384), u16 cnt,
// then the entries (u32 src_off, u32 len, u64 dst_off each). The buffers are
// allocated at exactly those sizes, so ASan sees any copy past them.
// Invariants: submit() accepts exactly the jobs whose every entry is in
// bounds (computed here independently), errors are INVALID_ARGUMENT and
// leave the destination untouched (validation comes first), and an accepted
// job leaves the destination as the entries say, byte for byte.
#include <algorithm>
#include <memory>

#include "fuzz_check.h"
#include "unpack/unpacker.h"

using namespace tcpx;
using namespace tcpx::unpack;
using tcpx::fuzz::Bytes;

namespace {

bool entry_in_bounds(const loadMeta& m, uint64_t dst_cap, uint64_t bounce_cap) {
  return m.len <= NET_UNPACK_PAGE_SIZE && m.dst_off + m.len <= dst_cap && m.dst_off <= dst_cap &&
         uint64_t{m.src_off} + m.len <= bounce_cap;
}

// Bounce contents that differ byte to byte, made once (a loop per input
// would cost more than the code under test).
const Bytes& pattern() {
  static const Bytes p = [] {
    Bytes b(16384);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 31 + 7);
    return b;
  }();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* meta = new netUnpackMeta();  // 512 KiB: allocated once
  static std::unique_ptr<Unpacker> unpacker = make_cpu_unpacker();

  tcpx::fuzz::InputCursor in(data, size);
  const int slot = static_cast<int8_t>(in.u8());
  const uint64_t dst_cap = in.u16() % 16385;
  const uint64_t bounce_cap = 1 + in.u16() % 16384;
  const uint64_t cnt = in.u16();
  const bool slot_ok = slot >= 0 && slot < NET_UNPACK_MAX_SLICES;

  bool want_ok = slot_ok && cnt <= NET_UNPACK_MAX_SLICE_PAGES;
  for (uint64_t& c : meta->cnt) c = 0;
  if (slot_ok) {
    meta->cnt[slot] = cnt;
    const uint64_t used = std::min<uint64_t>(cnt, NET_UNPACK_MAX_SLICE_PAGES);
    uint64_t i = 0;
    for (; i < used && in.remaining() > 0; ++i) {
      loadMeta& m = meta->mem[slot][i];
      m.src_off = in.u32();
      m.len = in.u32();
      m.dst_off = in.u64();
      want_ok = want_ok && entry_in_bounds(m, dst_cap, bounce_cap);
    }
    // Entries past the input are all zero: empty, and in bounds.
    std::fill(meta->mem[slot] + i, meta->mem[slot] + used, loadMeta{});
  }

  const Bytes bounce(pattern().begin(), pattern().begin() + static_cast<long>(bounce_cap));
  // At least one byte so that a zero capacity still has a non-null buffer.
  Bytes dst(dst_cap > 0 ? dst_cap : 1, 0xEE);
  const Bytes before = dst;

  UnpackJob job;
  job.meta = meta;
  job.slot = slot;
  job.bounce_buf = bounce.data();
  job.bounce_capacity = bounce_cap;
  job.dst = dst.data();
  job.dst_capacity = dst_cap;
  uint64_t ticket = 0;
  Status s = unpacker->submit(job, &ticket);
  FUZZ_EXPECT_CODE(s, StatusCode::kInvalidArgument);
  FUZZ_CHECK(s.ok() == want_ok);
  if (!s.ok()) {
    FUZZ_CHECK(dst == before);
    return 0;
  }
  FUZZ_CHECK(unpacker->query(ticket).ok());
  Bytes expect = before;
  for (uint64_t i = 0; i < cnt; ++i) {
    const loadMeta& m = meta->mem[slot][i];
    std::copy_n(bounce.begin() + m.src_off, m.len, expect.begin() + static_cast<long>(m.dst_off));
  }
  FUZZ_CHECK(dst == expect);
  return 0;
}
