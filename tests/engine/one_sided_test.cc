// Two-process one-sided transfers in direct and bounce mode: reads and writes
// with data checks, hostile FifoItems rejected while the target keeps serving,
// readv/writev with per-piece status, and a notification that follows a write.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "engine/fifo_item.h"
#include "support/status_assert.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

constexpr size_t kRegion = 8u << 20;
constexpr uint64_t kSeed = 5;

class OneSided : public ::testing::TestWithParam<PluginMode> {
 protected:
  void SetUp() override {
    if (std::string why = plugin_mode_conflict(GetParam()); !why.empty()) GTEST_SKIP() << why;
    set_test_env(GetParam());
    Status s = make_endpoint(&ep_);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_OK(start_engine_peer(&peer_, "target", {std::to_string(kRegion), std::to_string(kSeed)}));
    std::string port = peer_.expect("READY ");
    s = ep_->connect("127.0.0.1", 0, static_cast<uint16_t>(std::stoi(port)), &c_);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_EQ(peer_.expect("ACCEPTED"), "");
    buf_.resize(kRegion);
    ASSERT_TRUE(ep_->reg(buf_.data(), buf_.size(), &mr_).ok());
  }
  void TearDown() override { (void)peer_.write_line("quit"); }  // the peer may be gone already
  FifoItem advertise(size_t off, size_t len) {
    EXPECT_OK(peer_.write_line("adv " + std::to_string(off) + " " + std::to_string(len)));
    FifoItem item{};
    std::string hex = peer_.expect("ITEM ");
    EXPECT_TRUE(from_hex(hex, item.bytes, 64)) << hex;
    return item;
  }
  // Asks the target to verify its region; the notification sent first tells
  // it that our earlier writes completed (the target application learns it
  // no other way).
  std::string check(size_t off, size_t len, uint64_t seed, size_t start) {
    EXPECT_TRUE(ep_->send_notification(c_, "sync", "").ok());
    EXPECT_OK(peer_.write_line("check " + std::to_string(off) + " " + std::to_string(len) + " " +
                               std::to_string(seed) + " " + std::to_string(start)));
    return peer_.expect("CHECK ");
  }
  std::vector<uint8_t> buf_;  // declared first: it must outlive the endpoint's progress thread
  std::unique_ptr<Endpoint> ep_;
  ChildProcess peer_;
  ConnId c_ = 0;
  MrId mr_ = 0;
};

std::string mode_name(const ::testing::TestParamInfo<PluginMode>& i) { return to_string(i.param); }

TEST_P(OneSided, ReadAndWriteRoundTrips) {
  FifoItem r = advertise(4096, (1u << 20) + 13);
  ASSERT_TRUE(ep_->read(c_, mr_, buf_.data(), (1u << 20) + 13, r).ok());
  EXPECT_EQ(check_pattern(buf_.data(), (1u << 20) + 13, kSeed, 4096), kPatternMatches);

  const size_t wlen = (3u << 20) + 7;
  fill_pattern(buf_.data(), wlen, 9);
  FifoItem w = advertise(1u << 20, wlen);
  Status s = ep_->write(c_, mr_, buf_.data(), wlen, w);
  ASSERT_TRUE(s.ok()) << s.to_string();
  // write completed => the data is already in place at the target.
  EXPECT_EQ(check(1u << 20, wlen, 9, 0), "ok");
  // Zero bytes both ways.
  EXPECT_TRUE(ep_->read(c_, mr_, buf_.data(), 0, advertise(0, 0)).ok());
  EXPECT_TRUE(ep_->write(c_, mr_, buf_.data(), 0, advertise(0, 16)).ok());
}

// The target's application does nothing while it serves a stream of small
// writes, so its background thread polls the sockets between them instead of
// sleeping (Progress::loop). That spin is bounded: once the stream ends the
// process goes back to using no CPU.
TEST_P(OneSided, ATargetThatServedAStreamGoesBackToUsingNoCpu) {
  constexpr size_t kSmall = 4096;
  constexpr int kWindow = 16, kWrites = 3000;
  fill_pattern(buf_.data(), kSmall * kWindow, 21);
  std::vector<FifoItem> slots;
  for (int i = 0; i < kWindow; ++i) slots.push_back(advertise(static_cast<size_t>(i) * kSmall, kSmall));
  std::vector<XferId> live;
  for (int i = 0; i < kWrites; ++i) {
    const int slot = i % kWindow;
    if (live.size() == kWindow) {
      ASSERT_OK(ep_->wait(live.front(), 10000));
      live.erase(live.begin());
    }
    XferId id;
    ASSERT_OK(ep_->write_async(c_, mr_, buf_.data() + static_cast<size_t>(slot) * kSmall, kSmall, slots[slot], &id));
    live.push_back(id);
  }
  for (XferId id : live) ASSERT_OK(ep_->wait(id, 10000));
  EXPECT_EQ(check(0, kSmall * kWindow, 21, 0), "ok");
  auto cpu_us = [&] {
    EXPECT_OK(peer_.write_line("cpu"));
    return std::stol(peer_.expect("CPU "));
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // any spin has ended by now
  const long before = cpu_us();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long used = cpu_us() - before;
  // A thread spinning on would use the whole 500 ms; answering the two
  // commands and a heartbeat takes well under a millisecond.
  EXPECT_LT(used, 100000) << "the idle target used " << used << " us of CPU in 500 ms";
}

TEST_P(OneSided, InvalidFifoItemsRejectedAndTargetKeepsServing) {
  FifoItem good = advertise(0, 1u << 20);
  engine::FifoFields f;
  ASSERT_TRUE(engine::decode_fifo_item(good, &f).ok());
  auto expect_rejected = [&](engine::FifoFields bad, size_t size, const char* what, const char* needle) {
    FifoItem item = engine::encode_fifo_item(bad);
    Status s = ep_->read(c_, mr_, buf_.data(), size, item);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << what << ": " << s.to_string();
    EXPECT_NE(s.message().find(needle), std::string::npos) << what << ": " << s.message();
    s = ep_->write(c_, mr_, buf_.data(), size, item);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << what << ": " << s.to_string();
  };
  engine::FifoFields unknown = f;
  unknown.mr_id = 999;
  expect_rejected(unknown, 100, "unknown MR", "not registered");
  engine::FifoFields stale = f;
  stale.mr_token ^= 0x10;
  expect_rejected(stale, 100, "wrong token", "not registered");
  engine::FifoFields oob = f;
  oob.offset = kRegion - 10;
  oob.size = 100;
  expect_rejected(oob, 100, "out of bounds", "outside");
  engine::FifoFields wrap = f;
  wrap.offset = 16;
  wrap.size = UINT64_MAX - 8;
  expect_rejected(wrap, 100, "size overflow", "outside");
  // Garbage that is not a FifoItem at all is refused locally.
  FifoItem junk{};
  EXPECT_EQ(ep_->read(c_, mr_, buf_.data(), 10, junk).code(), StatusCode::kInvalidArgument);
  // More than advertised: refused locally too.
  EXPECT_EQ(ep_->read(c_, mr_, buf_.data(), (1u << 20) + 1, good).code(), StatusCode::kInvalidArgument);
  // The target still serves valid requests.
  ASSERT_TRUE(ep_->read(c_, mr_, buf_.data(), 1u << 20, good).ok());
  EXPECT_EQ(check_pattern(buf_.data(), 1u << 20, kSeed), kPatternMatches);
  // Deregistered region: the old item no longer works.
  ASSERT_OK(peer_.write_line("dereg"));
  EXPECT_EQ(peer_.expect("DEREG "), "OK");
  Status s = ep_->read(c_, mr_, buf_.data(), 100, good);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("not registered"), std::string::npos) << s.message();
}

TEST_P(OneSided, VectorReadWriteWithPerPieceStatus) {
  std::vector<IoPiece> rd(3);
  size_t offs[3] = {0, 5000, 3u << 20};
  size_t lens[3] = {4096, 123457, 2u << 20};
  size_t local = 0;
  for (int i = 0; i < 3; ++i) {
    rd[i].mr = mr_;
    rd[i].data = buf_.data() + local;
    rd[i].size = lens[i];
    rd[i].remote = advertise(offs[i], lens[i]);
    local += lens[i] + 100;
  }
  XferId id;
  ASSERT_TRUE(ep_->readv_async(c_, rd, &id).ok());
  Status st;
  uint64_t bytes = 0;
  ASSERT_TRUE(ep_->wait(id, 20000, &bytes).ok());
  EXPECT_EQ(bytes, lens[0] + lens[1] + lens[2]);  // the sum over the pieces
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(check_pattern(rd[i].data, lens[i], kSeed, offs[i]), kPatternMatches) << i;

  // writev with one bad piece: the others land, the transfer fails, and
  // piece_status says which one.
  std::vector<IoPiece> wr = rd;
  for (int i = 0; i < 3; ++i) fill_pattern(wr[i].data, lens[i], 100 + i);
  engine::FifoFields f;
  ASSERT_TRUE(engine::decode_fifo_item(wr[1].remote, &f).ok());
  f.mr_id = 4242;
  wr[1].remote = engine::encode_fifo_item(f);
  ASSERT_TRUE(ep_->writev_async(c_, wr, &id).ok());
  for (int i = 0; i < 200; ++i) {
    if (ep_->piece_status(id, 0, &st).ok() && !st.in_progress() && ep_->piece_status(id, 1, &st).ok() &&
        !st.in_progress() && ep_->piece_status(id, 2, &st).ok() && !st.in_progress())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(ep_->piece_status(id, 0, &st).ok());
  EXPECT_TRUE(st.ok()) << st.to_string();
  ASSERT_TRUE(ep_->piece_status(id, 1, &st).ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(ep_->piece_status(id, 2, &st).ok());
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(ep_->piece_status(id, 3, &st).code(), StatusCode::kInvalidArgument);
  Status all = ep_->wait(id, 1000, &bytes);
  EXPECT_EQ(all.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bytes, lens[0] + lens[2]);  // a failed vector counts the pieces that landed
  EXPECT_NE(all.message().find("piece 1"), std::string::npos) << all.message();
  EXPECT_EQ(check(offs[0], lens[0], 100, 0), "ok");
  EXPECT_EQ(check(offs[2], lens[2], 102, 0), "ok");
  EXPECT_EQ(check(offs[1], lens[1], kSeed, offs[1]), "ok");  // untouched
}

TEST_P(OneSided, NotificationAfterWriteSeesTheData) {
  const size_t len = 2u << 20;
  fill_pattern(buf_.data(), len, 11);
  FifoItem w = advertise(0, len);
  ASSERT_TRUE(ep_->write(c_, mr_, buf_.data(), len, w).ok());
  ASSERT_TRUE(ep_->send_notification(c_, "xfer", "written").ok());
  ASSERT_OK(peer_.write_line("waitnotif 0 " + std::to_string(len) + " 11"));
  EXPECT_EQ(peer_.expect("NOTIF "), "xfer written ok count=1");
}

INSTANTIATE_TEST_SUITE_P(Modes, OneSided,
                         ::testing::Values(PluginMode::kDirect, PluginMode::kBounce, PluginMode::kHostOnly),
                         mode_name);

}  // namespace
