// Cancel and deadlines per transfer (Endpoint::cancel, set_timeout,
// Config::transfer_timeout_ms), with two endpoints in one process over
// loopback: what can be withdrawn ends CANCELLED or TIMED_OUT on both sides,
// the peer forgets a withdrawn send (the next receive gets the next send),
// and what cannot be withdrawn ends as it would, with both sides agreeing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/status_assert.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

constexpr int kBoundMs = 5000;
constexpr size_t kBuf = 2u << 20;
constexpr size_t kSmall = 1000;       // travels inline (SEND_EAGER)
constexpr size_t kLarge = 1u << 20;   // SEND_ANNOUNCE, CTS, DATA through the plugin

class CancelPair : public ::testing::Test {
 protected:
  void SetUp() override { connect(loopback_config(), loopback_config()); }
  void connect(const Config& a_cfg, const Config& b_cfg) {
    a_.ep.reset();
    b_.ep.reset();
    set_test_env(false);
    ASSERT_OK(a_.open(kBuf, a_cfg));
    ASSERT_OK(b_.open(kBuf, b_cfg));
    ASSERT_OK(a_.ep->connect(b_.ep->local_info(), &a_conn_));
    ASSERT_OK(b_.ep->accept(&b_conn_, nullptr, kBoundMs));
  }
  // A sends `size` bytes of pattern `seed` from the start of its buffer.
  XferId send(size_t size, uint64_t seed) {
    fill_pattern(a_.buf.data(), size, seed);
    XferId x = 0;
    EXPECT_OK(a_.ep->send_async(a_conn_, a_.mr, a_.buf.data(), size, &x));
    return x;
  }
  // B receives into its buffer and checks the bytes are send(size, seed)'s.
  void expect_received(size_t size, uint64_t seed) {
    std::fill(b_.buf.begin(), b_.buf.end(), uint8_t{0});
    XferId r = 0;
    ASSERT_OK(b_.ep->recv_async(b_conn_, b_.mr, b_.buf.data(), kBuf, &r));
    Status s = b_.ep->wait(r, kBoundMs);  // bounded: a lost send must fail the test, not hang it
    ASSERT_OK(s);
    EXPECT_EQ(check_pattern(b_.buf.data(), size, seed), kPatternMatches);
    EXPECT_EQ(b_.buf[size], 0) << "more than " << size << " bytes arrived";
  }
  LocalSide a_, b_;
  ConnId a_conn_ = 0, b_conn_ = 0;
};

TEST_F(CancelPair, UnmatchedReceiveEndsCancelledAndTheNextReceiveGetsTheSend) {
  XferId r = 0;
  ASSERT_OK(b_.ep->recv_async(b_conn_, b_.mr, b_.buf.data(), kBuf, &r));
  ASSERT_OK(b_.ep->cancel(r));
  Status s = b_.ep->wait(r, kBoundMs);
  EXPECT_EQ(s.code(), StatusCode::kCancelled) << s.to_string();
  EXPECT_NE(s.message().find("cancelled"), std::string::npos) << s.to_string();
  EXPECT_EQ(b_.ep->poll_async(r).code(), StatusCode::kNotFound);  // retired

  XferId x = send(kLarge, 3);
  expect_received(kLarge, 3);
  EXPECT_OK(a_.ep->wait(x, kBoundMs));
}

// A send nobody receives is withdrawn; the receiver forgets it, so its next
// receive gets the next send. Inline and plugin-path sizes.
TEST_F(CancelPair, UnmatchedSendIsWithdrawnAndThePeerForgetsIt) {
  for (size_t size : {kSmall, kLarge}) {
    SCOPED_TRACE(size);
    XferId x = send(size, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the announce reaches B, which holds it
    ASSERT_OK(a_.ep->cancel(x));
    Status s = a_.ep->wait(x, kBoundMs);
    EXPECT_EQ(s.code(), StatusCode::kCancelled) << s.to_string();

    XferId y = send(size + 7, 2);
    expect_received(size + 7, 2);
    EXPECT_OK(a_.ep->wait(y, kBoundMs));
  }
}

// B's receive is posted first, so B usually matches the send and answers
// CTS; A cancels before that answer arrives (or loses the race). Either both
// ends fail CANCELLED, or both succeed with the data in place: never one of
// each. B's receive may also still be queued for B's progress thread when
// the announce and the CANCEL arrive (a loaded host): then B forgets the
// send and the receive stays posted, unmatched, and is cancelled here.
TEST_F(CancelPair, SendMatchedMeanwhileEndsTheSameOnBothSides) {
  int both_cancelled = 0;
  for (int i = 0; i < 10; ++i) {
    SCOPED_TRACE(i);
    std::fill(b_.buf.begin(), b_.buf.end(), uint8_t{0});
    XferId r = 0;
    ASSERT_OK(b_.ep->recv_async(b_conn_, b_.mr, b_.buf.data(), kBuf, &r));
    XferId x = send(kLarge, 10 + i);
    Status c = a_.ep->cancel(x);
    Status sx = a_.ep->wait(x, kBoundMs);
    Status sr = b_.ep->wait(r, kBoundMs);
    if (sx.ok()) {
      EXPECT_OK(sr);
      EXPECT_EQ(check_pattern(b_.buf.data(), kLarge, 10 + i), kPatternMatches);
      continue;
    }
    EXPECT_OK(c);
    EXPECT_EQ(sx.code(), StatusCode::kCancelled) << sx.to_string();
    if (sr.in_progress()) {
      ASSERT_OK(b_.ep->cancel(r));
      sr = b_.ep->wait(r, kBoundMs);
      EXPECT_EQ(sr.code(), StatusCode::kCancelled) << sr.to_string();
      continue;
    }
    EXPECT_EQ(sr.code(), StatusCode::kCancelled) << sr.to_string();
    EXPECT_NE(sr.message().find("withdrew"), std::string::npos) << sr.to_string();
    ++both_cancelled;
  }
  // Which way each round goes is timing: on a quiet 2-core host most rounds
  // end both CANCELLED (the CTS needs a round trip through the peer's
  // thread); pinned to one core, none may. Every outcome was checked above.
  RecordProperty("both_cancelled", both_cancelled);
  XferId y = send(kSmall, 99);
  expect_received(kSmall, 99);
  EXPECT_OK(a_.ep->wait(y, kBoundMs));
}

TEST_F(CancelPair, SendNobodyReceivesEndsTimedOutAtItsDeadline) {
  XferId x = send(kLarge, 4);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(a_.ep->set_timeout(x, 200));
  Status s = a_.ep->wait(x, kBoundMs);
  long took = ms_since(t0);
  EXPECT_EQ(s.code(), StatusCode::kTimedOut) << s.to_string();
  EXPECT_NE(s.message().find("deadline"), std::string::npos) << s.to_string();
  EXPECT_GE(took, 190);
  EXPECT_LT(took, 200 + 1000);

  XferId y = send(kSmall, 5);
  expect_received(kSmall, 5);
  EXPECT_OK(a_.ep->wait(y, kBoundMs));
}

TEST_F(CancelPair, CancelOfAnUnknownOrFinishedTransferIsNotFound) {
  EXPECT_EQ(a_.ep->cancel(123456).code(), StatusCode::kNotFound);
  EXPECT_EQ(a_.ep->set_timeout(123456, 10).code(), StatusCode::kNotFound);
  XferId x = send(kSmall, 6);
  expect_received(kSmall, 6);
  ASSERT_OK(a_.ep->wait(x, kBoundMs));
  EXPECT_EQ(a_.ep->cancel(x).code(), StatusCode::kNotFound);
  EXPECT_EQ(a_.ep->set_timeout(x, -1).code(), StatusCode::kInvalidArgument);
}

// Sends of mixed sizes, about half of them cancelled after a random delay,
// then a marker, while B receives at a slightly slower pace until the marker.
// What B got must be exactly the sends that ended OK, in order, byte-exact;
// B's receives that failed must be CANCELLED (a send cancelled after B
// matched it), at most one per cancelled send. Each send carries its seed in
// its first 8 bytes.
TEST_F(CancelPair, RandomCancelsKeepTheStreamInOrderOnBothSides) {
  constexpr int kSends = 40;
  constexpr uint64_t kMarker = 1000;
  const size_t sizes[] = {8, kSmall, 16u << 10, (16u << 10) + 1, 200u << 10, kLarge};

  std::vector<uint64_t> received;
  int recv_cancelled = 0;
  std::string recv_errors;
  std::thread receiver([&] {
    std::mt19937 pace(11);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::microseconds(pace() % 3000));
      XferId r = 0;
      Status s = b_.ep->recv_async(b_conn_, b_.mr, b_.buf.data(), kBuf, &r);
      if (s.ok()) s = b_.ep->wait(r, 2 * kBoundMs);
      if (s.code() == StatusCode::kCancelled) {
        ++recv_cancelled;
        continue;
      }
      if (!s.ok()) {
        recv_errors += s.to_string() + "\n";
        return;
      }
      uint64_t seed = 0;
      std::memcpy(&seed, b_.buf.data(), 8);
      if (seed == kMarker) return;
      received.push_back(seed);
    }
  });

  std::mt19937 rng(7);
  constexpr size_t kSlot = kBuf / 2;  // two sends in flight, each in its own half
  std::vector<uint64_t> ok_seeds;
  int cancelled = 0;
  std::vector<std::pair<XferId, uint64_t>> live;
  auto settle_oldest = [&] {
    Status s = a_.ep->wait(live.front().first, 2 * kBoundMs);
    if (s.ok()) ok_seeds.push_back(live.front().second);
    else if (s.code() == StatusCode::kCancelled) ++cancelled;
    else ADD_FAILURE() << "send " << live.front().second << ": " << s.to_string();
    live.erase(live.begin());
  };
  for (uint64_t i = 0; i < kSends; ++i) {
    if (live.size() == 2) settle_oldest();
    size_t size = sizes[rng() % 6];
    uint8_t* p = a_.buf.data() + (i % 2) * kSlot;
    std::memcpy(p, &i, 8);
    fill_pattern(p + 8, size - 8, i);
    XferId x = 0;
    ASSERT_OK(a_.ep->send_async(a_conn_, a_.mr, p, size, &x));
    live.push_back({x, i});
    if (rng() % 2) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
      Status c = a_.ep->cancel(x);
      EXPECT_TRUE(c.ok() || c.code() == StatusCode::kNotFound) << c.to_string();
    }
  }
  while (!live.empty()) settle_oldest();
  std::memcpy(a_.buf.data(), &kMarker, 8);
  ASSERT_OK(a_.ep->send(a_conn_, a_.mr, a_.buf.data(), 64));
  receiver.join();

  EXPECT_TRUE(recv_errors.empty()) << recv_errors;
  EXPECT_EQ(received, ok_seeds);
  EXPECT_LE(recv_cancelled, cancelled);
  EXPECT_GT(cancelled, 0);
  EXPECT_GT(ok_seeds.size(), 0u);
}

// Config::transfer_timeout_ms gives every transfer a deadline: a receive no
// send matches ends TIMED_OUT, and is retired like any final status.
TEST_F(CancelPair, ConfigDeadlineEndsAnUnmatchedReceive) {
  Config cfg = loopback_config();
  cfg.transfer_timeout_ms = 150;
  connect(loopback_config(), cfg);
  XferId r = 0;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(b_.ep->recv_async(b_conn_, b_.mr, b_.buf.data(), kBuf, &r));
  Status s = b_.ep->wait(r, kBoundMs);
  EXPECT_EQ(s.code(), StatusCode::kTimedOut) << s.to_string();
  EXPECT_NE(s.message().find("deadline"), std::string::npos) << s.to_string();
  EXPECT_GE(ms_since(t0), 140);
  EXPECT_EQ(b_.ep->poll_async(r).code(), StatusCode::kNotFound);
  // The connection still works: A's endpoint has no deadline.
  XferId x = send(kSmall, 8);
  expect_received(kSmall, 8);
  EXPECT_OK(a_.ep->wait(x, kBoundMs));
}

// The deadline holds for the blocking calls too, whose ops end on their
// caller's stack (engine/sync_wait.h) rather than in a transfer entry: a
// receive no send matches and a send nobody receives, inline and through
// the plugin, each end TIMED_OUT.
TEST_F(CancelPair, ConfigDeadlineEndsBlockingCalls) {
  Config cfg = loopback_config();
  cfg.transfer_timeout_ms = 150;
  connect(cfg, cfg);
  const std::vector<std::pair<const char*, std::function<Status()>>> calls = {
      {"recv", [&] { return b_.ep->recv(b_conn_, b_.mr, b_.buf.data(), kBuf); }},
      {"inline send", [&] { return a_.ep->send(a_conn_, a_.mr, a_.buf.data(), kSmall); }},
      {"plugin send", [&] { return a_.ep->send(a_conn_, a_.mr, a_.buf.data(), kBuf); }},
  };
  for (const auto& [name, call] : calls) {
    SCOPED_TRACE(name);
    auto t0 = std::chrono::steady_clock::now();
    auto done = std::async(std::launch::async, call);
    if (done.wait_for(std::chrono::milliseconds(kBoundMs)) != std::future_status::ready) {
      // Closing the connections ends the call (its op fails), so the test
      // ends rather than hangs.
      (void)a_.ep->close_connection(a_conn_);
      (void)b_.ep->close_connection(b_conn_);
      FAIL() << "the blocking call outlived its deadline by " << kBoundMs << " ms";
    }
    Status s = done.get();
    EXPECT_EQ(s.code(), StatusCode::kTimedOut) << s.to_string();
    EXPECT_NE(s.message().find("deadline"), std::string::npos) << s.to_string();
    EXPECT_GE(ms_since(t0), 140);
  }
}

// A default deadline on every transfer: thousands of transfers that end in
// time (whose deadline entries the engine must not pile up), then one that
// nobody receives still ends TIMED_OUT at its deadline.
TEST_F(CancelPair, ManyTransfersUnderADefaultDeadlineThenOneExpires) {
  Config cfg = loopback_config();
  cfg.transfer_timeout_ms = 300;
  connect(cfg, loopback_config());
  for (int i = 0; i < 3000; ++i) {
    XferId x = send(64, i);
    expect_received(64, i);
    ASSERT_OK(a_.ep->wait(x, kBoundMs)) << i;
  }
  XferId x = send(kSmall, 1);
  auto t0 = std::chrono::steady_clock::now();
  Status s = a_.ep->wait(x, kBoundMs);
  EXPECT_EQ(s.code(), StatusCode::kTimedOut) << s.to_string();
  EXPECT_LT(ms_since(t0), 300 + 1000);
}

}  // namespace
