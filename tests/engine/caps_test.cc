// Bounded resources a peer or a long-lived application can drive, with two
// endpoints in one process (or a raw socket peer): connection bookkeeping is
// freed on close, held sends and undelivered messages and notifications are
// capped.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>
#include <vector>

#include "support/status_assert.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

constexpr int kBoundMs = 5000;

TEST(Caps, ClosedConnectionsLeaveNoStateBehind) {
  set_test_env(false);
  std::unique_ptr<Endpoint> a, b;
  ASSERT_TRUE(make_endpoint(&a).ok());
  ASSERT_TRUE(make_endpoint(&b).ok());
  ConnId first = 0, ca = 0, cb = 0;
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(a->connect(b->local_info(), &ca).ok());
    ASSERT_TRUE(b->accept(&cb, nullptr, kBoundMs).ok());
    if (first == 0) first = ca;
    ASSERT_TRUE(a->send_message(ca, "hi", 2).ok());
    std::vector<uint8_t> m;
    ASSERT_TRUE(b->recv_message(cb, &m, kBoundMs).ok());
    EXPECT_EQ(a->connection_count(), 1u);
    ASSERT_TRUE(a->close_connection(ca).ok());
    EXPECT_EQ(a->connection_count(), 0u);
    // The peer's end failed; it keeps its error until closed too.
    EXPECT_EQ(b->recv_message(cb, &m, kBoundMs).code(), StatusCode::kPeerClosed);
    EXPECT_EQ(b->connection_count(), 1u);
    ASSERT_TRUE(b->close_connection(cb).ok());
    EXPECT_EQ(b->connection_count(), 0u);
  }
  // A closed id reads as closed, closing it again is fine, an id never
  // handed out is unknown.
  std::vector<uint8_t> m;
  EXPECT_EQ(a->recv_message(first, &m, 0).code(), StatusCode::kClosed);
  EXPECT_EQ(a->send_message(ca, "x", 1).code(), StatusCode::kClosed);
  EXPECT_EQ(a->send_notification(ca, "n", "m").code(), StatusCode::kClosed);
  EXPECT_TRUE(a->close_connection(ca).ok());
  EXPECT_EQ(a->send_message(ca + 1000, "x", 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(a->close_connection(ca + 1000).code(), StatusCode::kNotFound);
  EXPECT_EQ(a->close_connection(0).code(), StatusCode::kNotFound);
}


// Two endpoints, one connection (a -> b); b with its own Config.
class CapsPair : public ::testing::Test {
 protected:
  void connect(const Config& bcfg) {
    set_test_env(false);
    ASSERT_TRUE(make_endpoint(&a_).ok());
    Status s = make_endpoint(&b_, 0, bcfg);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_TRUE(a_->connect(b_->local_info(), &ca_).ok());
    ASSERT_TRUE(b_->accept(&cb_, nullptr, kBoundMs).ok());
    abuf_.resize(1 << 20);
    bbuf_.resize(1 << 20);
    ASSERT_TRUE(a_->reg(abuf_.data(), abuf_.size(), &amr_).ok());
    ASSERT_TRUE(b_->reg(bbuf_.data(), bbuf_.size(), &bmr_).ok());
  }
  std::unique_ptr<Endpoint> a_, b_;
  ConnId ca_ = 0, cb_ = 0;
  std::vector<uint8_t> abuf_, bbuf_;
  MrId amr_ = 0, bmr_ = 0;
};

// Eager (inline) sends nobody posted a receive for: b holds them up to its
// cap, refuses the rest with BUSY, and the held ones are delivered in order
// once receives come.
TEST_F(CapsPair, EagerSendsPastTheUnmatchedCapAreRefused) {
  Config cfg = loopback_config();
  cfg.max_unmatched_bytes = 64 << 10;
  connect(cfg);
  constexpr size_t kMsg = 4096, kSends = 40;
  constexpr size_t kHeld = (64 << 10) / (kMsg + 64);  // 15
  std::vector<XferId> sends(kSends);
  for (size_t i = 0; i < kSends; ++i) {
    fill_pattern(abuf_.data() + i * kMsg, kMsg, 100 + i);
    ASSERT_TRUE(a_->send_async(ca_, amr_, abuf_.data() + i * kMsg, kMsg, &sends[i]).ok());
  }
  // The refused ones fail on the sender with BUSY; the held ones wait.
  for (size_t i = kHeld; i < kSends; ++i) {
    Status s = a_->wait(sends[i], kBoundMs);
    EXPECT_EQ(s.code(), StatusCode::kBusy) << i << ": " << s.to_string();
    EXPECT_NE(s.message().find("TCPX_MAX_UNMATCHED_BYTES"), std::string::npos) << s.to_string();
  }
  for (size_t i = 0; i < kHeld; ++i) EXPECT_EQ(a_->poll_async(sends[i]).code(), StatusCode::kInProgress) << i;
  for (size_t i = 0; i < kHeld; ++i) {
    size_t got = 0;
    Status s = b_->recv(cb_, bmr_, bbuf_.data(), kMsg, &got);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(got, kMsg);
    EXPECT_EQ(check_pattern(bbuf_.data(), kMsg, 100 + i), SIZE_MAX) << i;
    s = a_->wait(sends[i], kBoundMs);
    EXPECT_TRUE(s.ok()) << i << ": " << s.to_string();
  }
  // The connection still works, on the eager and the plugin path.
  for (size_t size : {kMsg, size_t{1} << 20}) {
    fill_pattern(abuf_.data(), size, 7);
    XferId r;
    ASSERT_TRUE(b_->recv_async(cb_, bmr_, bbuf_.data(), size, &r).ok());
    ASSERT_TRUE(a_->send(ca_, amr_, abuf_.data(), size).ok());
    ASSERT_TRUE(b_->wait(r, kBoundMs).ok());
    EXPECT_EQ(check_pattern(bbuf_.data(), size, 7), SIZE_MAX);
  }
}

// A blocking receive takes a send b already holds in the call itself
// (Progress::receive_now): in order behind a receive posted earlier, giving
// the held room back (rounds of a full cap would be refused BUSY otherwise),
// and an undersized buffer still fails on both sides.
TEST_F(CapsPair, BlockingReceivesTakeHeldSendsInOrderAndGiveTheirRoomBack) {
  Config cfg = loopback_config();
  cfg.max_unmatched_bytes = 64 << 10;
  connect(cfg);
  constexpr size_t kMsg = 4096;
  constexpr size_t kHeld = (64 << 10) / (kMsg + 64);  // 15
  // Frames are handled in order: once b has the message that follows a's
  // sends, every one of them is held (or refused), and once a has b's
  // answer, a refusal b sent before it has reached a.
  auto until_held = [&] {
    ASSERT_TRUE(a_->send_message(ca_, "mark", 4).ok());
    std::vector<uint8_t> m;
    ASSERT_TRUE(b_->recv_message(cb_, &m, kBoundMs).ok());
    ASSERT_TRUE(b_->send_message(cb_, "held", 4).ok());
    ASSERT_TRUE(a_->recv_message(ca_, &m, kBoundMs).ok());
  };
  // A receive posted before anything arrived takes the first send.
  XferId early;
  ASSERT_TRUE(b_->recv_async(cb_, bmr_, bbuf_.data() + (512 << 10), kMsg, &early).ok());
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(round);
    const size_t sends_n = round == 0 ? kHeld + 1 : kHeld;
    std::vector<XferId> sends(sends_n);
    for (size_t i = 0; i < sends_n; ++i) {
      fill_pattern(abuf_.data() + i * kMsg, kMsg, round * 100 + i);
      ASSERT_TRUE(a_->send_async(ca_, amr_, abuf_.data() + i * kMsg, kMsg, &sends[i]).ok());
    }
    until_held();
    // None refused: the room of the sends taken in earlier rounds is back
    // (a blocking receive below would wait forever for a refused one).
    for (size_t i = 0; i < sends_n; ++i)
      ASSERT_EQ(a_->poll_async(sends[i]).code(), i == 0 && round == 0 ? StatusCode::kOk : StatusCode::kInProgress)
          << i;
    for (size_t i = round == 0 ? 1 : 0; i < sends_n; ++i) {
      std::fill(bbuf_.begin(), bbuf_.begin() + kMsg, uint8_t{0});
      size_t got = 0;
      Status s = b_->recv(cb_, bmr_, bbuf_.data(), kMsg, &got);
      ASSERT_TRUE(s.ok()) << i << ": " << s.to_string();
      EXPECT_EQ(got, kMsg);
      EXPECT_EQ(check_pattern(bbuf_.data(), kMsg, round * 100 + i), SIZE_MAX) << i;
    }
    for (size_t i = round == 0 ? 1 : 0; i < sends_n; ++i) {
      Status s = a_->wait(sends[i], kBoundMs);
      EXPECT_TRUE(s.ok()) << i << ": " << s.to_string();
    }
  }
  ASSERT_TRUE(b_->wait(early, kBoundMs).ok());
  EXPECT_EQ(check_pattern(bbuf_.data() + (512 << 10), kMsg, 0), SIZE_MAX);

  // Held, then received into too small a buffer: the usual refusal on both
  // sides, and the next held send goes to the next receive.
  XferId big, next;
  fill_pattern(abuf_.data(), kMsg, 77);
  fill_pattern(abuf_.data() + kMsg, 100, 78);
  ASSERT_TRUE(a_->send_async(ca_, amr_, abuf_.data(), kMsg, &big).ok());
  ASSERT_TRUE(a_->send_async(ca_, amr_, abuf_.data() + kMsg, 100, &next).ok());
  until_held();
  size_t got = 0;
  Status s = b_->recv(cb_, bmr_, bbuf_.data(), kMsg - 1, &got);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_EQ(a_->wait(big, kBoundMs).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(b_->recv(cb_, bmr_, bbuf_.data(), kMsg, &got).ok());
  EXPECT_EQ(got, 100u);
  EXPECT_EQ(check_pattern(bbuf_.data(), 100, 78), SIZE_MAX);
  EXPECT_TRUE(a_->wait(next, kBoundMs).ok());
}

// Messages nobody takes with recv_message: past the cap the connection fails
// with PROTOCOL_ERROR; what was queued before is still delivered, in order.
TEST_F(CapsPair, MessageQueueOverrunFailsTheConnection) {
  Config cfg = loopback_config();
  cfg.max_undelivered_bytes = 2 << 20;
  connect(cfg);
  constexpr size_t kMsg = 512 << 10;  // 3 fit in 2 MiB (each + 64)
  std::vector<uint8_t> m(kMsg);
  // Messages taken give their room back: many more than fit, one at a time.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(a_->send_message(ca_, m.data(), kMsg).ok());
    ASSERT_TRUE(b_->recv_message(cb_, &m, kBoundMs).ok()) << i;
    ASSERT_EQ(m.size(), kMsg);
  }
  // Sends past what fits may already see the connection gone (the send
  // leaves at once, and b fails it on the 4th): those answer PEER_CLOSED.
  for (int i = 0; i < 5; ++i) {
    fill_pattern(m.data(), kMsg, 200 + i);
    Status sent = a_->send_message(ca_, m.data(), kMsg);
    if (i < 4) ASSERT_TRUE(sent.ok()) << i << ": " << sent.to_string();
    else if (!sent.ok()) {
      EXPECT_EQ(sent.code(), StatusCode::kPeerClosed) << sent.to_string();
    }
  }
  // Wait (taking nothing) until b has failed the connection: a call on it
  // answers its sticky error from then on.
  auto t0 = std::chrono::steady_clock::now();
  while (b_->send_notification(cb_, "probe", "").ok() && ms_since(t0) < kBoundMs)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b_->recv_message(cb_, &m, kBoundMs).ok()) << i;
    ASSERT_EQ(m.size(), kMsg);
    EXPECT_EQ(check_pattern(m.data(), kMsg, 200 + i), SIZE_MAX) << i;
  }
  Status s = b_->recv_message(cb_, &m, kBoundMs);
  EXPECT_EQ(s.code(), StatusCode::kProtocolError) << s.to_string();
  EXPECT_NE(s.message().find("overran the message queue: 3 messages"), std::string::npos) << s.to_string();
  // The sender sees the connection go.
  s = a_->recv_message(ca_, &m, kBoundMs);
  EXPECT_EQ(s.code(), StatusCode::kPeerClosed) << s.to_string();
}

// Notifications nobody takes with get_notifications: the same.
TEST_F(CapsPair, NotificationQueueOverrunFailsTheConnection) {
  Config cfg = loopback_config();
  cfg.max_undelivered_bytes = 2 << 20;
  connect(cfg);
  const std::string field(4096, 'x');
  // How many fit: each costs its name + msg + 64 bytes.
  size_t fit = 0;
  for (uint64_t used = 0;; ++fit) {
    uint64_t cost = std::to_string(fit).size() + field.size() + 64;
    if (used + cost > (2u << 20)) break;
    used += cost;
  }
  // Past what fits the connection may be gone before the loop ends (each
  // notification leaves at once): those sends answer PEER_CLOSED.
  for (size_t i = 0; i < fit + 20; ++i) {
    Status sent = a_->send_notification(ca_, std::to_string(i), field);
    if (i <= fit) {
      ASSERT_TRUE(sent.ok()) << i << ": " << sent.to_string();
    } else if (!sent.ok()) {
      EXPECT_EQ(sent.code(), StatusCode::kPeerClosed) << sent.to_string();
      break;
    }
  }
  std::vector<uint8_t> m;
  Status s = b_->recv_message(cb_, &m, kBoundMs);
  EXPECT_EQ(s.code(), StatusCode::kProtocolError) << s.to_string();
  EXPECT_NE(s.message().find("overran the notification queue"), std::string::npos) << s.to_string();
  std::vector<Notification> notes = b_->get_notifications();
  ASSERT_EQ(notes.size(), fit);
  for (size_t i = 0; i < notes.size(); ++i) {
    EXPECT_EQ(notes[i].name, std::to_string(i));
    EXPECT_EQ(notes[i].msg, field);
  }
}

}  // namespace

// A peer that stops reading its control connection (frozen: its kernel
// still acknowledges, so TCP never fails): the frames we queue for it pile up
// only to the cap, then the connection fails with TRANSPORT_ERROR, long
// before the heartbeat would declare the peer dead.
TEST(Caps, PeerThatStopsReadingIsFailedPastTheBacklogCap) {
  set_test_env(false);
  Config cfg = loopback_config();
  cfg.max_control_backlog_bytes = 2 << 20;
  cfg.peer_timeout_ms = 60000;
  std::unique_ptr<Endpoint> ep;
  ASSERT_TRUE(make_endpoint(&ep, 0, cfg).ok());
  ChildProcess peer;
  ASSERT_OK(start_engine_peer(&peer, "sink"));
  ConnId c = 0;
  Status s = ep->connect("127.0.0.1", 0, static_cast<uint16_t>(std::stoi(peer.expect("READY "))), &c);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_EQ(kill(peer.pid(), SIGSTOP), 0);
  std::vector<uint8_t> m(1 << 20, 0x5a);
  auto t0 = std::chrono::steady_clock::now();
  // The kernel's socket buffers take some MiB first; then the backlog grows.
  for (int i = 0; i < 200 && s.ok(); ++i) {
    s = ep->send_message(c, m.data(), m.size());
    if (s.ok()) s = ep->send_notification(c, "n", std::string(4096, 'x'));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(s.code(), StatusCode::kTransportError) << s.to_string();
  EXPECT_NE(s.message().find("not reading its control connection"), std::string::npos) << s.to_string();
  EXPECT_LT(ms_since(t0), 5000);
}
