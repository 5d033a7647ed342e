// Requests posted behind outstanding ones may wait for the next pass instead
// of leaving at once (Progress::submit, engine/owed_replies.h). These tests
// check that no such request waits for a reply that depends on it: each
// would otherwise stall until a heartbeat's PONG happened to flush it, which
// the long peer timeout here puts 15 s away, past every bound below. A never
// spins in wait(), so its waits run no pass of their own: only the pass that
// a reply triggers on the background thread can flush what submit held.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "engine/fifo_item.h"
#include "support/status_assert.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

constexpr int kBoundMs = 5000;
constexpr size_t kBuf = 4u << 20;
constexpr size_t kSmall = 4096;  // inline (SEND_EAGER, WRITE_INLINE, READ_INLINE)

Config quiet_heartbeat(int spin_us) {
  Config c = loopback_config();
  c.peer_timeout_ms = 60000;  // first PING after 15 s of silence
  c.spin_us = spin_us;
  return c;
}

class Batching : public ::testing::Test {
 protected:
  void SetUp() override {
    set_test_env(false);
    ASSERT_OK(a_.open(kBuf, quiet_heartbeat(0)));
    ASSERT_OK(b_.open(kBuf, quiet_heartbeat(200)));
    ASSERT_OK(a_.ep->connect(b_.ep->local_info(), &a_conn_));
    ASSERT_OK(b_.ep->accept(&b_conn_, nullptr, kBoundMs));
  }
  // B's region [off, off + len), advertised to A.
  FifoItem advertise(size_t off, size_t len) {
    FifoItem item{};
    EXPECT_OK(b_.ep->advertise(b_conn_, b_.mr, b_.buf.data() + off, len, &item));
    return item;
  }
  XferId send(size_t off, size_t size, uint64_t seed) {
    fill_pattern(a_.buf.data() + off, size, seed);
    XferId x = 0;
    EXPECT_OK(a_.ep->send_async(a_conn_, a_.mr, a_.buf.data() + off, size, &x));
    return x;
  }
  LocalSide a_, b_;
  ConnId a_conn_ = 0, b_conn_ = 0;
};

// B's application waits for A's write before it receives A's earlier send
// (as one that awaits a write's notification would): the write must not wait
// behind the send, whose reply only B's receive would bring.
TEST_F(Batching, WriteAndReadBehindAnUnreceivedSendLeaveAtOnce) {
  XferId s = send(0, kSmall, 1);
  // Let the send leave and sit unmatched at B.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));

  fill_pattern(a_.buf.data() + kSmall, kSmall, 2);
  XferId w = 0;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(a_.ep->write_async(a_conn_, a_.mr, a_.buf.data() + kSmall, kSmall, advertise(kSmall, kSmall), &w));
  ASSERT_OK(a_.ep->wait(w, kBoundMs));
  fill_pattern(b_.buf.data() + 2 * kSmall, kSmall, 3);
  XferId r = 0;
  ASSERT_OK(a_.ep->read_async(a_conn_, a_.mr, a_.buf.data() + 2 * kSmall, kSmall, advertise(2 * kSmall, kSmall),
                              &r));
  ASSERT_OK(a_.ep->wait(r, kBoundMs));
  EXPECT_LT(ms_since(t0), kBoundMs);
  EXPECT_EQ(check_pattern(b_.buf.data() + kSmall, kSmall, 2), kPatternMatches);
  EXPECT_EQ(check_pattern(a_.buf.data() + 2 * kSmall, kSmall, 3), kPatternMatches);
  EXPECT_TRUE(a_.ep->poll_async(s).in_progress()) << "the send completed before any receive was posted";

  std::vector<uint8_t> got(kSmall);
  size_t n = 0;
  ASSERT_OK(b_.ep->recv(b_conn_, b_.mr, b_.buf.data() + 3 * kSmall, kSmall, &n));
  EXPECT_EQ(n, kSmall);
  EXPECT_EQ(check_pattern(b_.buf.data() + 3 * kSmall, kSmall, 1), kPatternMatches);
  ASSERT_OK(a_.ep->wait(s, kBoundMs));
}

// Sends posted while earlier ones wait for receives that come late: each
// receive the peer posts releases the next, and all arrive, in order.
TEST_F(Batching, SendsBehindUnreceivedSendsArriveInOrderAsReceivesTrickleIn) {
  constexpr int kCount = 64;
  std::vector<XferId> sends;
  for (int i = 0; i < kCount; ++i) sends.push_back(send(i * kSmall, kSmall, 100 + i));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 0; i < kCount; ++i) {
    SCOPED_TRACE(i);
    XferId r = 0;
    ASSERT_OK(b_.ep->recv_async(b_conn_, b_.mr, b_.buf.data() + i * kSmall, kSmall, &r));
    ASSERT_OK(b_.ep->wait(r, kBoundMs));
    EXPECT_EQ(check_pattern(b_.buf.data() + i * kSmall, kSmall, 100 + i), kPatternMatches);
    if (i % 8 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (XferId x : sends) ASSERT_OK(a_.ep->wait(x, kBoundMs));
}

// The pattern tcpx-bench drives: a window of small sends, a new one posted as
// the oldest completes, against a receiver that keeps receives posted; and
// the same for writes. Every byte checked, nothing waits for a heartbeat.
TEST_F(Batching, WindowOfSmallTransfersRefilledAsTheOldestCompletes) {
  constexpr int kCount = 3000, kWindow = 32, kSlots = 256;
  std::thread receiver([&] {
    std::deque<std::pair<XferId, int>> live;
    int posted = 0, done = 0;
    while (done < kCount) {
      while (posted < kCount && static_cast<int>(live.size()) < 2 * kWindow) {
        XferId r = 0;
        ASSERT_OK(b_.ep->recv_async(b_conn_, b_.mr, b_.buf.data() + (posted % kSlots) * kSmall, kSmall, &r));
        live.emplace_back(r, posted++);
      }
      auto [r, i] = live.front();
      live.pop_front();
      ASSERT_OK(b_.ep->wait(r, kBoundMs));
      ASSERT_EQ(check_pattern(b_.buf.data() + (i % kSlots) * kSmall, kSmall, 7000 + i), kPatternMatches) << i;
      ++done;
    }
  });
  // A lambda, so that a failed ASSERT still reaches the join below.
  auto send_all = [&] {
    std::deque<XferId> live;
    for (int i = 0; i < kCount; ++i) {
      // Slots are reused only after their send completed (window < kSlots).
      live.push_back(send((i % kSlots) * kSmall, kSmall, 7000 + i));
      if (static_cast<int>(live.size()) == kWindow) {
        ASSERT_OK(a_.ep->wait(live.front(), kBoundMs));
        live.pop_front();
      }
    }
    for (XferId x : live) ASSERT_OK(a_.ep->wait(x, kBoundMs));
  };
  send_all();
  receiver.join();

  std::deque<XferId> live;
  for (int i = 0; i < kCount; ++i) {
    size_t slot = i % kSlots;
    fill_pattern(a_.buf.data() + slot * kSmall, kSmall, 9000 + i);
    XferId w = 0;
    ASSERT_OK(a_.ep->write_async(a_conn_, a_.mr, a_.buf.data() + slot * kSmall, kSmall,
                                 advertise(slot * kSmall, kSmall), &w));
    live.push_back(w);
    if (static_cast<int>(live.size()) == kWindow) {
      ASSERT_OK(a_.ep->wait(live.front(), kBoundMs));
      live.pop_front();
    }
  }
  for (XferId x : live) ASSERT_OK(a_.ep->wait(x, kBoundMs));
  for (int i = kCount - kSlots; i < kCount; ++i)
    EXPECT_EQ(check_pattern(b_.buf.data() + (i % kSlots) * kSmall, kSmall, 9000 + i), kPatternMatches) << i;
}

}  // namespace
