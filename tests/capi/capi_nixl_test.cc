// NIXL's UCCL backend call sequence, replayed exactly against a second
// process: READ and WRITE with 1, 16 and 1,000 descriptors of mixed sizes
// over several registrations, notification last, data checked byte for byte;
// then both agents transferring to each other at once.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "agent_fixture.h"
#include "support/status_assert.h"

namespace capi_test {
namespace {

constexpr size_t KiB = 1024, MiB = 1024 * 1024;
constexpr int kRegs = 4;

std::vector<size_t> sizes_for(int n) {
  if (n == 1) return {64 * MiB};
  if (n == 16)
    return {1, 2, 3, 63, 100, 4095, 4096, 4097, 64 * KiB, 64 * KiB + 1, 1 * MiB, 1 * MiB + 7,
            2 * MiB, 4 * MiB + 3, 8 * MiB, 512};
  std::vector<size_t> s;
  const size_t cycle[] = {1, 17, 256, 4096, 5000, 65536, 100000};
  for (int i = 0; i < n; ++i) s.push_back(i % 250 == 249 ? 1 * MiB : cycle[i % 7]);
  return s;
}

struct Sides {
  Layout layout;
  std::vector<LocalBuffer*> local;  // per registration
  std::vector<uint64_t> remote;     // per registration, peer addresses
  std::vector<uint32_t> remote_seed, local_seed;
};

class NixlSequenceTest : public AgentFixture, public ::testing::WithParamInterface<int> {
 protected:
  // Registers kRegs buffers per side; local ones hold `local_fill` (seeded
  // when true, 0xEE otherwise), remote ones are seeded.
  Sides make_sides(const std::vector<size_t>& sizes, bool local_seeded, int key_base) {
    Sides s;
    s.layout = make_layout(sizes, kRegs);
    for (int r = 0; r < kRegs; ++r) {
      uint32_t rseed = 1000u + static_cast<uint32_t>(key_base + r);
      uint32_t lseed = 2000u + static_cast<uint32_t>(key_base + r);
      size_t sz = s.layout.reg_sizes[static_cast<size_t>(r)];
      s.remote_seed.push_back(rseed);
      s.local_seed.push_back(lseed);
      s.remote.push_back(peer_buffer(key_base + r, sz, rseed));
      EXPECT_NE(s.remote.back(), 0u);
      s.local.push_back(local_buffer(sz, local_seeded ? int64_t{lseed} : -1));
    }
    return s;
  }

  std::vector<Descriptor> descriptors(const Sides& s) {
    std::vector<Descriptor> d;
    for (size_t i = 0; i < s.layout.sizes.size(); ++i) {
      size_t r = static_cast<size_t>(s.layout.reg_of[i]);
      size_t off = s.layout.offsets[i];
      d.push_back({s.local[r]->mr, s.local[r]->data + off, s.remote[r] + off, s.layout.sizes[i]});
    }
    return d;
  }
};

TEST_P(NixlSequenceTest, ReadThenWriteWithNotification) {
  const int n = GetParam();
  auto sizes = sizes_for(n);

  // READ: the peer's seeded regions land in our 0xEE buffers.
  Sides rd = make_sides(sizes, /*local_seeded=*/false, 0);
  auto r = run_nixl_sequence(conn_, /*is_read=*/true, descriptors(rd), "tester", "read-done",
                             60000);
  ASSERT_TRUE(r.ok) << r.error;
  for (size_t i = 0; i < sizes.size(); ++i) {
    size_t reg = static_cast<size_t>(rd.layout.reg_of[i]);
    size_t off = rd.layout.offsets[i];
    size_t bad = check_pattern(rd.local[reg]->data + off, sizes[i], rd.remote_seed[reg], off);
    ASSERT_EQ(bad, kPatternMatches) << "READ descriptor " << i << " (" << sizes[i] << " B) differs at " << bad;
  }
  // Only the described ranges were written: the gap before each is untouched.
  for (size_t i = 0; i < sizes.size(); ++i) {
    size_t reg = static_cast<size_t>(rd.layout.reg_of[i]);
    ASSERT_EQ(rd.local[reg]->data[rd.layout.offsets[i] - 1], 0xEE) << "descriptor " << i;
  }
  auto notifs = peer_notifs(1, 10000);
  ASSERT_EQ(notifs.size(), 1u);
  EXPECT_EQ(notifs[0], "tester read-done");

  // WRITE: our seeded regions land in fresh peer buffers.
  Sides wr = make_sides(sizes, /*local_seeded=*/true, 100);
  r = run_nixl_sequence(conn_, /*is_read=*/false, descriptors(wr), "tester", "write-done",
                        60000);
  ASSERT_TRUE(r.ok) << r.error;
  notifs = peer_notifs(1, 10000);
  ASSERT_EQ(notifs.size(), 1u);
  EXPECT_EQ(notifs[0], "tester write-done");
  std::vector<std::string> checks;
  for (size_t i = 0; i < sizes.size(); ++i) {
    size_t reg = static_cast<size_t>(wr.layout.reg_of[i]);
    size_t off = wr.layout.offsets[i];
    checks.push_back(std::to_string(100 + reg) + " " + std::to_string(off) + " " +
                     std::to_string(sizes[i]) + " " + std::to_string(wr.local_seed[reg]) + " " +
                     std::to_string(off));
  }
  std::string verdict;
  EXPECT_TRUE(peer_checks(checks, &verdict)) << verdict;
  // Nothing made up: no notification beyond the two sent.
  EXPECT_TRUE(peer_notifs(1, 200).empty());
}

INSTANTIATE_TEST_SUITE_P(Descriptors, NixlSequenceTest, ::testing::Values(1, 16, 1000),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

// Both agents run NIXL's sequence toward each other at the same time.
class BothDirections : public AgentFixture {};

TEST_F(BothDirections, ReadAndWriteEachWayAtOnce) {
  std::vector<size_t> sizes;
  for (int i = 0; i < 64; ++i) sizes.push_back(i % 8 == 0 ? 2 * MiB + i : 4096 * (i % 5) + i + 1);
  Layout l = make_layout(sizes, kRegs);

  // Peer -> us: the peer writes its seeded buffers 200.. into our inboxes.
  std::vector<LocalBuffer*> inbox;
  for (int r = 0; r < kRegs; ++r) {
    inbox.push_back(local_buffer(l.reg_sizes[r], -1));
    ASSERT_NE(peer_buffer(200 + r, l.reg_sizes[r], 3000u + r), 0u);
  }
  // Us -> peer: we read the peer's buffers 300.. and write ours into 400..
  std::vector<LocalBuffer*> rd_local, wr_local;
  std::vector<uint64_t> rd_remote, wr_remote;
  for (int r = 0; r < kRegs; ++r) {
    rd_local.push_back(local_buffer(l.reg_sizes[r], -1));
    rd_remote.push_back(peer_buffer(300 + r, l.reg_sizes[r], 4000u + r));
    wr_local.push_back(local_buffer(l.reg_sizes[r], 5000 + r));
    wr_remote.push_back(peer_buffer(400 + r, l.reg_sizes[r], 6000u + r));
  }
  (void)peer_.write_line("CONNECT " + [&] {
    char* m = nullptr;
    uccl_engine_get_metadata(engine_, &m);
    std::string s(m);
    delete[] m;
    return s;
  }());
  ASSERT_OK(peer_.expect_line("CONNECTED", nullptr, 30000));

  std::string cmd = "NIXL WRITE " + std::to_string(sizes.size()) + " peer-wrote";
  for (size_t i = 0; i < sizes.size(); ++i) {
    size_t r = static_cast<size_t>(l.reg_of[i]);
    cmd += "\n" + std::to_string(200 + r) + " " + std::to_string(l.offsets[i]) + " " +
           std::to_string(reinterpret_cast<uintptr_t>(inbox[r]->data) + l.offsets[i]) + " " +
           std::to_string(sizes[i]);
  }
  ASSERT_OK(peer_.write_line(cmd));  // the peer starts while we start ours

  std::vector<Descriptor> rd, wr;
  for (size_t i = 0; i < sizes.size(); ++i) {
    size_t r = static_cast<size_t>(l.reg_of[i]);
    size_t off = l.offsets[i];
    rd.push_back({rd_local[r]->mr, rd_local[r]->data + off, rd_remote[r] + off, sizes[i]});
    wr.push_back({wr_local[r]->mr, wr_local[r]->data + off, wr_remote[r] + off, sizes[i]});
  }
  auto a = run_nixl_sequence(conn_, true, rd, "tester", "", 60000);
  ASSERT_TRUE(a.ok) << a.error;
  auto b = run_nixl_sequence(conn_, false, wr, "tester", "we-wrote", 60000);
  ASSERT_TRUE(b.ok) << b.error;

  std::string done;
  ASSERT_OK(peer_.expect_line("NIXL_DONE", &done, 60000));
  ASSERT_EQ(done, "NIXL_DONE ok");

  // The peer's notification reaches our process-wide get_notifs().
  std::vector<notify_msg_t> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.empty() && std::chrono::steady_clock::now() < deadline) {
    got = uccl_engine_get_notifs();
    if (got.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_STREQ(got[0].name, "peer");
  EXPECT_STREQ(got[0].msg, "peer-wrote");

  for (size_t i = 0; i < sizes.size(); ++i) {
    size_t r = static_cast<size_t>(l.reg_of[i]);
    size_t off = l.offsets[i];
    ASSERT_EQ(check_pattern(inbox[r]->data + off, sizes[i], 3000u + r, off), kPatternMatches) << i;
    ASSERT_EQ(check_pattern(rd_local[r]->data + off, sizes[i], 4000u + r, off), kPatternMatches) << i;
  }
  // The target learns that our writes landed from our notification (which
  // the engine delivers after the data), so it checks only after seeing it.
  auto notifs = peer_notifs(1, 10000);
  ASSERT_EQ(notifs.size(), 1u);
  EXPECT_EQ(notifs[0], "tester we-wrote");
  std::vector<std::string> checks;
  for (size_t i = 0; i < sizes.size(); ++i) {
    size_t r = static_cast<size_t>(l.reg_of[i]);
    checks.push_back(std::to_string(400 + r) + " " + std::to_string(l.offsets[i]) + " " +
                     std::to_string(sizes[i]) + " " + std::to_string(5000 + r) + " " +
                     std::to_string(l.offsets[i]));
  }
  std::string verdict;
  EXPECT_TRUE(peer_checks(checks, &verdict)) << verdict;
}

}  // namespace
}  // namespace capi_test
