// Steady-state transfers allocate no heap memory (issue 10: "no heap
// allocation per posted transfer"). This program replaces the global
// operator new to count every allocation of the process, the engine's
// threads included, while two endpoints move a mix of transfers: 8-byte
// ping-pongs, windows of 4 KiB sends, writes and reads (the inline path) and
// 256 KiB ones (through the plugin). Each transfer used to cost about ten
// allocations (transfer table node and pieces, a frame vector and payload
// per frame read, encoded acks and requests, deque blocks); a few are left
// for data structures that grow in blocks, far below one per transfer.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "support/status_assert.h"
#include "test_util.h"

// Sanitizer runtimes replace the allocator themselves (a replacement here
// would pair their operator new with our free): the count is skipped there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TCPX_COUNTS_ALLOCATIONS 0
#else
#define TCPX_COUNTS_ALLOCATIONS 1
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_allocations{0};
}  // namespace

#if TCPX_COUNTS_ALLOCATIONS
namespace {
void* counted_alloc(size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(size_t n) { return counted_alloc(n); }
void* operator new[](size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif

using namespace tcpx;
using namespace tcpx::test;

namespace {

constexpr int kBoundMs = 10000;
constexpr size_t kSmall = 4096;
constexpr size_t kLarge = 256u << 10;  // over TCPX_EAGER_BYTES: through the plugin
constexpr int kWindow = 16;
constexpr size_t kBuf = 2 * kWindow * kSmall + 4 * kLarge;

class Allocations : public ::testing::Test {
 protected:
  void SetUp() override {
    set_test_env(false);
    Config cfg = loopback_config();
    cfg.peer_timeout_ms = 600000;  // no heartbeat inside the measured rounds
    ASSERT_OK(a_.open(kBuf, cfg));
    ASSERT_OK(b_.open(kBuf, cfg));
    ASSERT_OK(a_.ep->connect(b_.ep->local_info(), &a_conn_));
    ASSERT_OK(b_.ep->accept(&b_conn_, nullptr, kBoundMs));
  }

  // Waits for every id; the first failure is kept in failed_ (a gtest
  // assertion here could itself allocate inside the measured rounds).
  void wait_all(Endpoint* ep, const XferId* ids, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      Status s = ep->wait(ids[i], kBoundMs);
      if (!s.ok() && failed_.ok()) failed_ = s;
    }
  }
  void note(const Status& s) {
    if (!s.ok() && failed_.ok()) failed_ = s;
  }
  // b's region [off, off + len), advertised to a.
  FifoItem sub_item(size_t off, size_t len) {
    FifoItem item{};
    note(b_.ep->advertise(b_conn_, b_.mr, b_.buf.data() + off, len, &item));
    return item;
  }

  // Two-sided a -> b of `count` transfers of `size` bytes at offset 0, with
  // b's receives posted first; then checks the bytes.
  void sends(size_t size, int count, uint64_t seed) {
    XferId recvs[kWindow], snds[kWindow];
    for (int i = 0; i < count; ++i) {
      fill_pattern(a_.buf.data() + i * size, size, seed + i);
      note(b_.ep->recv_async(b_conn_, b_.mr, b_.buf.data() + i * size, size, &recvs[i]));
    }
    for (int i = 0; i < count; ++i) note(a_.ep->send_async(a_conn_, a_.mr, a_.buf.data() + i * size, size, &snds[i]));
    wait_all(a_.ep.get(), snds, count);
    wait_all(b_.ep.get(), recvs, count);
    for (int i = 0; i < count; ++i)
      if (check_pattern(b_.buf.data() + i * size, size, seed + i) != kPatternMatches) ++bad_bytes_;
  }

  // One-sided: a writes `count` pieces of `size` into b, then reads them back
  // into its second half; checks both.
  void writes_and_reads(size_t size, int count, uint64_t seed) {
    XferId ids[kWindow];
    const size_t back = kBuf / 2;
    for (int i = 0; i < count; ++i) {
      fill_pattern(a_.buf.data() + i * size, size, seed + i);
      note(a_.ep->write_async(a_conn_, a_.mr, a_.buf.data() + i * size, size, items_[i * size / kSmall], &ids[i]));
    }
    wait_all(a_.ep.get(), ids, count);
    for (int i = 0; i < count; ++i)
      note(a_.ep->read_async(a_conn_, a_.mr, a_.buf.data() + back + i * size, size, items_[i * size / kSmall],
                             &ids[i]));
    wait_all(a_.ep.get(), ids, count);
    for (int i = 0; i < count; ++i) {
      if (check_pattern(b_.buf.data() + i * size, size, seed + i) != kPatternMatches) ++bad_bytes_;
      if (check_pattern(a_.buf.data() + back + i * size, size, seed + i) != kPatternMatches) ++bad_bytes_;
    }
  }

  // One round: 80 transfers over both paths, every byte checked.
  void round(uint64_t seed) {
    for (int i = 0; i < 2; ++i) sends(8, 1, seed + 100 * i);  // ping-pong's shape
    sends(kSmall, kWindow, seed + 1000);
    writes_and_reads(kSmall, kWindow, seed + 2000);
    sends(kLarge, 4, seed + 3000);
    writes_and_reads(kLarge, 2, seed + 4000);
  }
  static constexpr int kTransfersPerRound = 2 * 2 + 2 * kWindow + 2 * kWindow + 2 * 4 + 2 * 2;

  LocalSide a_, b_;
  ConnId a_conn_ = 0, b_conn_ = 0;
  std::vector<FifoItem> items_;
  Status failed_;
  int bad_bytes_ = 0;
};

TEST_F(Allocations, SteadyStateTransfersAllocateAlmostNothing) {
  if (!TCPX_COUNTS_ALLOCATIONS) GTEST_SKIP() << "allocations are not counted under a sanitizer";
  // Every 4 KiB slot of b's first half, advertised once before the rounds,
  // as a KV-cache target's regions are (the application's own bookkeeping is
  // not what this measures).
  for (size_t off = 0; off < kBuf / 2; off += kSmall) items_.push_back(sub_item(off, std::min(kLarge, kBuf / 2 - off)));
  ASSERT_OK(failed_);
  constexpr int kWarmRounds = 50, kRounds = 200;
  for (int r = 0; r < kWarmRounds; ++r) round(r * 10000);
  ASSERT_OK(failed_);
  ASSERT_EQ(bad_bytes_, 0);

  g_counting.store(true);
  for (int r = 0; r < kRounds; ++r) round((kWarmRounds + r) * 10000);
  g_counting.store(false);
  const uint64_t allocations = g_allocations.load();

  ASSERT_OK(failed_);
  EXPECT_EQ(bad_bytes_, 0);
  const uint64_t transfers = static_cast<uint64_t>(kRounds) * kTransfersPerRound;
  RecordProperty("allocations", static_cast<int>(allocations));
  RecordProperty("transfers", static_cast<int>(transfers));
  EXPECT_LT(allocations, transfers / 100) << allocations << " heap allocations in " << transfers << " transfers";
}

}  // namespace
