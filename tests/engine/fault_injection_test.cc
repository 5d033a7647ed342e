// Faults injected into one live control connection through FaultProxy, with
// two endpoints in one process and a second, direct connection between them:
// a corrupted frame and a cut socket fail every transfer on the faulty
// connection with a specific error within the bound, the errors are sticky,
// and the direct connection (and new ones) keep moving correct data.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "fault_proxy.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

constexpr int kBoundMs = 5000;  // design: a dead connection fails its transfers within 5 s
constexpr size_t kBuf = 4 << 20;

// Buffers first, so they outlive the endpoint's progress thread.
struct Side {
  std::vector<uint8_t> out = std::vector<uint8_t>(kBuf), in = std::vector<uint8_t>(kBuf);
  std::unique_ptr<Endpoint> ep;
  MrId out_mr = 0, in_mr = 0;
  void reg() {
    ASSERT_TRUE(ep->reg(out.data(), out.size(), &out_mr).ok());
    ASSERT_TRUE(ep->reg(in.data(), in.size(), &in_mr).ok());
  }
};

// A (the connecting side) reaches B once through the proxy and once directly.
class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override {
    set_test_env(false);
    ASSERT_TRUE(make_endpoint(&a_.ep).ok());
    ASSERT_TRUE(make_endpoint(&b_.ep).ok());
    a_.reg();
    b_.reg();
    proxy_ = std::make_unique<FaultProxy>(b_.ep->local_info().port);
    ASSERT_TRUE(proxy_->ok());
    Status s = a_.ep->connect("127.0.0.1", b_.ep->local_gpu_idx(), proxy_->port(), &via_a_);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_TRUE(b_.ep->accept(&via_b_, nullptr, kBoundMs).ok());
    ASSERT_TRUE(a_.ep->connect(b_.ep->local_info(), &direct_a_).ok());
    ASSERT_TRUE(b_.ep->accept(&direct_b_, nullptr, kBoundMs).ok());
  }

  // from sends `size` bytes to `to` on the given connection ends; checks them.
  static void move_and_check(Side& from, ConnId fc, Side& to, ConnId tc, size_t size, uint64_t seed) {
    fill_pattern(from.out.data(), size, seed);
    XferId r;
    ASSERT_TRUE(to.ep->recv_async(tc, to.in_mr, to.in.data(), size, &r).ok());
    Status s = from.ep->send(fc, from.out_mr, from.out.data(), size);
    ASSERT_TRUE(s.ok()) << s.to_string();
    s = to.ep->wait(r, kBoundMs);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(check_pattern(to.in.data(), size, seed), kPatternMatches);
  }

  // The direct connection still works both ways, on the plugin and eager paths.
  void expect_direct_connection_healthy() {
    move_and_check(a_, direct_a_, b_, direct_b_, kBuf, 21);
    move_and_check(b_, direct_b_, a_, direct_a_, kBuf, 22);
    move_and_check(a_, direct_a_, b_, direct_b_, 4096, 23);
  }

  // The control stream from A is quiet: everything A queued has reached B.
  void wait_until_quiet() {
    uint64_t seen = proxy_->client_bytes();
    for (int i = 0; i < 100; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      uint64_t now = proxy_->client_bytes();
      if (now == seen && i >= 2) return;
      seen = now;
    }
  }

  Side a_, b_;
  std::unique_ptr<FaultProxy> proxy_;
  ConnId via_a_ = 0, via_b_ = 0, direct_a_ = 0, direct_b_ = 0;
};

TEST_F(FaultInjection, CorruptedFrameFailsThatConnectionOnly) {
  move_and_check(a_, via_a_, b_, via_b_, 1 << 20, 1);  // healthy through the proxy first
  wait_until_quiet();
  proxy_->corrupt_next_from_client();  // the next frame from A arrives with a bad magic

  XferId r, s;
  ASSERT_TRUE(b_.ep->recv_async(via_b_, b_.in_mr, b_.in.data(), 4096, &r).ok());
  std::fill(b_.in.begin(), b_.in.begin() + 4096, uint8_t{0});
  fill_pattern(a_.out.data(), 4096, 2);
  ASSERT_TRUE(a_.ep->send_async(via_a_, a_.out_mr, a_.out.data(), 4096, &s).ok());
  auto t0 = std::chrono::steady_clock::now();
  Status rs = b_.ep->wait(r, kBoundMs);
  EXPECT_EQ(rs.code(), StatusCode::kProtocolError) << rs.to_string();
  EXPECT_NE(rs.message().find("magic"), std::string::npos) << rs.to_string();
  Status ss = a_.ep->wait(s, kBoundMs);
  EXPECT_EQ(ss.code(), StatusCode::kPeerClosed) << ss.to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(kBoundMs));
  // Nothing of the corrupted transfer reached the receive buffer.
  EXPECT_EQ(std::count(b_.in.begin(), b_.in.begin() + 4096, uint8_t{0}), 4096);

  // Sticky on both ends: later calls on that connection fail at once.
  XferId x;
  EXPECT_EQ(b_.ep->recv_async(via_b_, b_.in_mr, b_.in.data(), 16, &x).code(), StatusCode::kProtocolError);
  EXPECT_EQ(a_.ep->send_async(via_a_, a_.out_mr, a_.out.data(), 16, &x).code(), StatusCode::kPeerClosed);
  expect_direct_connection_healthy();
}

TEST_F(FaultInjection, CutControlSocketFailsOutstandingTransfersOnBothSides) {
  move_and_check(b_, via_b_, a_, via_a_, 1 << 20, 3);
  // Outstanding on both ends: receives nobody will match, and a one-sided
  // write that may or may not finish before the cut.
  XferId ra, rb, w;
  ASSERT_TRUE(a_.ep->recv_async(via_a_, a_.in_mr, a_.in.data(), kBuf, &ra).ok());
  ASSERT_TRUE(b_.ep->recv_async(via_b_, b_.in_mr, b_.in.data(), kBuf, &rb).ok());
  FifoItem item;
  ASSERT_TRUE(b_.ep->advertise(via_b_, b_.out_mr, b_.out.data(), kBuf, &item).ok());
  std::fill(b_.out.begin(), b_.out.end(), uint8_t{0});
  fill_pattern(a_.out.data(), kBuf, 4);
  ASSERT_TRUE(a_.ep->write_async(via_a_, a_.out_mr, a_.out.data(), kBuf, item, &w).ok());

  proxy_->cut();
  auto t0 = std::chrono::steady_clock::now();
  Status sa = a_.ep->wait(ra, kBoundMs);
  Status sb = b_.ep->wait(rb, kBoundMs);
  EXPECT_EQ(sa.code(), StatusCode::kPeerClosed) << sa.to_string();
  EXPECT_EQ(sb.code(), StatusCode::kPeerClosed) << sb.to_string();
  Status sw = a_.ep->wait(w, kBoundMs);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(kBoundMs));
  if (sw.ok()) {
    EXPECT_EQ(check_pattern(b_.out.data(), kBuf, 4), kPatternMatches);  // finished before the cut
  } else {
    EXPECT_EQ(sw.code(), StatusCode::kPeerClosed) << sw.to_string();
  }
  XferId x;
  EXPECT_EQ(a_.ep->send_async(via_a_, a_.out_mr, a_.out.data(), 16, &x).code(), StatusCode::kPeerClosed);

  expect_direct_connection_healthy();
  // And B still accepts new connections.
  ConnId again_a, again_b;
  ASSERT_TRUE(a_.ep->connect(b_.ep->local_info(), &again_a).ok());
  ASSERT_TRUE(b_.ep->accept(&again_b, nullptr, kBoundMs).ok());
  move_and_check(a_, again_a, b_, again_b, 1 << 20, 5);
}

}  // namespace
