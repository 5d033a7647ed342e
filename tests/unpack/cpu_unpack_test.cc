// The CPU unpacker: random fragment lists copied exactly, untouched bytes
// left alone, and every kind of bad metadata rejected before any byte moves.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "fragment_layout.h"
#include "unpack/unpacker.h"

namespace tcpx::unpack {
namespace {

using testing::kSlotRegion;
using testing::random_layout;
using testing::SlotLayout;

constexpr uint8_t kGuard = 0xEE;

struct Fixture {
  std::unique_ptr<netUnpackMeta> meta = std::make_unique<netUnpackMeta>();
  std::vector<uint8_t> bounce;
  std::vector<uint8_t> dst;
  Fixture(uint64_t bounce_bytes, uint64_t dst_bytes) : bounce(bounce_bytes), dst(dst_bytes, kGuard) {
    std::memset(meta.get(), 0, sizeof(netUnpackMeta));
    for (size_t i = 0; i < bounce.size(); ++i) bounce[i] = static_cast<uint8_t>(i * 131 + 7);
  }
  UnpackJob job(int slot) {
    UnpackJob j;
    j.meta = meta.get();
    j.slot = slot;
    j.bounce_buf = bounce.data();
    j.bounce_capacity = bounce.size();
    j.dst = dst.data();
    j.dst_capacity = dst.size();
    return j;
  }
  void set(int slot, std::vector<loadMeta> e) {
    std::copy(e.begin(), e.end(), meta->mem[slot]);
    meta->cnt[slot] = e.size();
  }
  bool dst_untouched() const {
    for (uint8_t b : dst)
      if (b != kGuard) return false;
    return true;
  }
};

TEST(CpuUnpack, RandomFragmentListsAllSlotsBitExact) {
  std::mt19937_64 rng(20261125);
  auto u = make_cpu_unpacker();
  ASSERT_STREQ(u->name(), "cpu");
  for (int round = 0; round < 3; ++round) {
    auto meta = std::make_unique<netUnpackMeta>();
    std::vector<uint8_t> bounce(kSlotRegion * NET_UNPACK_MAX_SLICES);
    testing::fill_random(bounce, rng);
    std::vector<SlotLayout> layouts;
    std::vector<std::vector<uint8_t>> dsts, want;
    std::vector<uint64_t> tickets;
    for (int s = 0; s < NET_UNPACK_MAX_SLICES; ++s) {
      // Slot 0 holds the maximum count, slot 1 is empty, the rest random.
      uint32_t count = s == 0 ? NET_UNPACK_MAX_SLICE_PAGES : s == 1 ? 0 : 1 + rng() % NET_UNPACK_MAX_SLICE_PAGES;
      layouts.push_back(random_layout(rng, count, s * kSlotRegion));
      testing::install(meta.get(), s, layouts.back());
      // A guard band after the fragments catches writes past the last one.
      dsts.emplace_back(layouts.back().dst_bytes + 64, kGuard);
      want.push_back(dsts.back());
      testing::reference_unpack(layouts.back(), bounce.data(), want.back().data());
    }
    for (int s = 0; s < NET_UNPACK_MAX_SLICES; ++s) {
      UnpackJob j;
      j.meta = meta.get();
      j.slot = s;
      j.bounce_buf = bounce.data();
      j.bounce_capacity = bounce.size();
      j.dst = dsts[s].data();
      j.dst_capacity = dsts[s].size();
      uint64_t t = 0;
      ASSERT_TRUE(u->submit(j, &t).ok()) << "slot " << s;
      tickets.push_back(t);
    }
    for (int s = 0; s < NET_UNPACK_MAX_SLICES; ++s) {
      EXPECT_TRUE(u->query(tickets[s]).ok());
      ASSERT_EQ(dsts[s], want[s]) << "round " << round << " slot " << s << " count " << meta->cnt[s];
    }
  }
}

TEST(CpuUnpack, TicketsIncreaseAndNeverIssuedTicketsAreNotFound) {
  Fixture f(8192, 8192);
  f.set(3, {{0, 100, 0}});
  auto u = make_cpu_unpacker();
  uint64_t a = 0, b = 0;
  ASSERT_TRUE(u->submit(f.job(3), &a).ok());
  ASSERT_TRUE(u->submit(f.job(3), &b).ok());
  EXPECT_EQ(b, a + 1);
  EXPECT_EQ(u->query(b + 1).code(), StatusCode::kNotFound);
  // A finished copy is never forgotten: an owner may query it late, after
  // many more tickets were issued to others.
  for (uint64_t i = 0; i < 2 * Unpacker::kMaxTicketsInFlight; ++i) {
    uint64_t t;
    ASSERT_TRUE(u->submit(f.job(3), &t).ok());
  }
  EXPECT_TRUE(u->query(a).ok());
  EXPECT_TRUE(u->query(b + 2 * Unpacker::kMaxTicketsInFlight).ok());
  EXPECT_EQ(u->query(b + 2 * Unpacker::kMaxTicketsInFlight + 1).code(), StatusCode::kNotFound);
}

TEST(CpuUnpack, CountAboveLimitRejected) {
  Fixture f(8192, 8192);
  f.set(0, {{0, 16, 0}});
  f.meta->cnt[0] = NET_UNPACK_MAX_SLICE_PAGES + 1;
  auto u = make_cpu_unpacker();
  uint64_t t = 0;
  Status s = u->submit(f.job(0), &t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("cnt 2049"), std::string::npos) << s.message();
  EXPECT_TRUE(f.dst_untouched());
}

TEST(CpuUnpack, CountAtLimitAccepted) {
  Fixture f(NET_UNPACK_MAX_SLICE_PAGES * 4, NET_UNPACK_MAX_SLICE_PAGES * 4);
  std::vector<loadMeta> e;
  for (uint32_t i = 0; i < NET_UNPACK_MAX_SLICE_PAGES; ++i) e.push_back({i * 4, 4, uint64_t{i} * 4});
  f.set(5, e);
  auto u = make_cpu_unpacker();
  uint64_t t = 0;
  ASSERT_TRUE(u->submit(f.job(5), &t).ok());
  EXPECT_EQ(f.dst, f.bounce);
}

TEST(CpuUnpack, LengthAbovePageRejectedAndNothingWritten) {
  Fixture f(3 * 4096, 3 * 4096);
  // A good entry first: validation must reject the job before copying it.
  f.set(2, {{0, 4096, 0}, {4096, 4097, 4096}});
  auto u = make_cpu_unpacker();
  uint64_t t = 0;
  Status s = u->submit(f.job(2), &t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("entry 1"), std::string::npos) << s.message();
  EXPECT_TRUE(f.dst_untouched());
  f.set(2, {{0, 4096, 0}, {4096, 4096, 4096}});
  ASSERT_TRUE(u->submit(f.job(2), &t).ok());
  EXPECT_EQ(0, std::memcmp(f.dst.data(), f.bounce.data(), 8192));
}

TEST(CpuUnpack, DestinationOverflowRejected) {
  Fixture f(8192, 1000);
  auto u = make_cpu_unpacker();
  uint64_t t = 0;
  f.set(0, {{0, 101, 900}});  // ends one byte past the end
  EXPECT_EQ(u->submit(f.job(0), &t).code(), StatusCode::kInvalidArgument);
  f.set(0, {{0, 100, UINT64_MAX - 10}});  // dst_off + len wraps around
  EXPECT_EQ(u->submit(f.job(0), &t).code(), StatusCode::kInvalidArgument);
  f.set(0, {{0, 1, 1000}});  // starts at the end
  EXPECT_EQ(u->submit(f.job(0), &t).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(f.dst_untouched());
  f.set(0, {{0, 100, 900}});  // ends exactly at the end
  ASSERT_TRUE(u->submit(f.job(0), &t).ok());
  EXPECT_EQ(0, std::memcmp(f.dst.data() + 900, f.bounce.data(), 100));
  EXPECT_EQ(f.dst[899], kGuard);
}

TEST(CpuUnpack, BounceOverreadRejectedWhenCapacityKnown) {
  Fixture f(4096, 8192);
  auto u = make_cpu_unpacker();
  uint64_t t = 0;
  f.set(0, {{4000, 97, 0}});
  EXPECT_EQ(u->submit(f.job(0), &t).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(f.dst_untouched());
  f.set(0, {{4000, 96, 0}});
  EXPECT_TRUE(u->submit(f.job(0), &t).ok());
}

TEST(CpuUnpack, MalformedJobsRejected) {
  Fixture f(4096, 4096);
  f.set(0, {{0, 8, 0}});
  auto u = make_cpu_unpacker();
  uint64_t t = 0;
  UnpackJob j = f.job(0);
  j.slot = NET_UNPACK_MAX_SLICES;
  EXPECT_EQ(u->submit(j, &t).code(), StatusCode::kInvalidArgument);
  j = f.job(0);
  j.slot = -1;
  EXPECT_EQ(u->submit(j, &t).code(), StatusCode::kInvalidArgument);
  j = f.job(0);
  j.meta = nullptr;
  EXPECT_EQ(u->submit(j, &t).code(), StatusCode::kInvalidArgument);
  j = f.job(0);
  j.dst_is_device = true;
  EXPECT_EQ(u->submit(j, &t).code(), StatusCode::kUnsupported);
  EXPECT_EQ(u->submit(f.job(0), nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(f.dst_untouched());
}

TEST(CpuUnpack, ConcurrentSubmittersGetDistinctTicketsAndExactData) {
  auto u = make_cpu_unpacker();
  constexpr int kThreads = 4, kJobs = 200;
  std::vector<std::set<uint64_t>> seen(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      Fixture f(16384, 16384);
      std::mt19937_64 rng(th);
      for (int i = 0; i < kJobs; ++i) {
        SlotLayout l = random_layout(rng, 1 + rng() % 3, 0);
        testing::install(f.meta.get(), th, l);
        std::vector<uint8_t> want(f.dst);
        testing::reference_unpack(l, f.bounce.data(), want.data());
        uint64_t t = 0;
        if (!u->submit(f.job(th), &t).ok() || !u->query(t).ok() || f.dst != want) failures++;
        seen[th].insert(t);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<uint64_t> all;
  for (auto& s : seen) all.insert(s.begin(), s.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kJobs));
}

}  // namespace
}  // namespace tcpx::unpack
