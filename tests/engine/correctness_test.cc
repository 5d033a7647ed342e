// Checks the target and the transfer table make on behalf of the
// application, with two endpoints in one process: a FifoItem is honoured only
// on the connection it was advertised for, and a vector transfer's piece
// results stay readable after its final status, and dereg can wait for the
// transfers using a region.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

constexpr int kBoundMs = 5000;
constexpr size_t kBuf = 1 << 20;

// A connects to B twice: (a1, b1) and (a2, b2).
class TwoConnections : public ::testing::Test {
 protected:
  void SetUp() override {
    set_test_env(false);
    ASSERT_TRUE(a_.open(kBuf).ok());
    ASSERT_TRUE(b_.open(kBuf).ok());
    ASSERT_TRUE(a_.ep->connect(b_.ep->local_info(), &a1_).ok());
    ASSERT_TRUE(b_.ep->accept(&b1_, nullptr, kBoundMs).ok());
    ASSERT_TRUE(a_.ep->connect(b_.ep->local_info(), &a2_).ok());
    ASSERT_TRUE(b_.ep->accept(&b2_, nullptr, kBoundMs).ok());
    ASSERT_NE(b1_, b2_);
  }
  LocalSide a_, b_;
  ConnId a1_ = 0, a2_ = 0, b1_ = 0, b2_ = 0;
};

// Both the inline path (small) and the plugin path (large), read and write.
TEST_F(TwoConnections, FifoItemHonouredOnlyOnTheConnectionItWasAdvertisedFor) {
  for (size_t size : {size_t{4096}, kBuf}) {
    SCOPED_TRACE(size);
    FifoItem item;
    ASSERT_TRUE(b_.ep->advertise(b1_, b_.mr, b_.buf.data(), size, &item).ok());
    fill_pattern(b_.buf.data(), size, 7);
    std::fill(a_.buf.begin(), a_.buf.end(), uint8_t{0});

    // Used over the other connection: refused by the target, nothing moved.
    Status s = a_.ep->read(a2_, a_.mr, a_.buf.data(), size, item);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    EXPECT_NE(s.message().find("advertised for connection " + std::to_string(b1_)), std::string::npos)
        << s.to_string();
    EXPECT_EQ(std::count(a_.buf.begin(), a_.buf.begin() + size, uint8_t{0}), static_cast<long>(size));
    fill_pattern(a_.buf.data(), size, 8);
    s = a_.ep->write(a2_, a_.mr, a_.buf.data(), size, item);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    EXPECT_EQ(check_pattern(b_.buf.data(), size, 7), SIZE_MAX);

    // Both connections stay up; on its own connection the item works.
    std::fill(a_.buf.begin(), a_.buf.end(), uint8_t{0});
    s = a_.ep->read(a1_, a_.mr, a_.buf.data(), size, item);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(check_pattern(a_.buf.data(), size, 7), SIZE_MAX);
    fill_pattern(a_.buf.data(), size, 9);
    s = a_.ep->write(a1_, a_.mr, a_.buf.data(), size, item);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(check_pattern(b_.buf.data(), size, 9), SIZE_MAX);

    FifoItem item2;
    ASSERT_TRUE(b_.ep->advertise(b2_, b_.mr, b_.buf.data(), size, &item2).ok());
    s = a_.ep->read(a2_, a_.mr, a_.buf.data(), size, item2);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(check_pattern(a_.buf.data(), size, 9), SIZE_MAX);
  }
}

// A vector read with one bad piece: after wait() returned the transfer's
// final error, piece_status still tells which piece failed and why.
TEST_F(TwoConnections, PieceStatusAfterTheFinalStatus) {
  FifoItem good, wrong_conn;
  ASSERT_TRUE(b_.ep->advertise(b1_, b_.mr, b_.buf.data(), 8192, &good).ok());
  ASSERT_TRUE(b_.ep->advertise(b2_, b_.mr, b_.buf.data(), 8192, &wrong_conn).ok());
  fill_pattern(b_.buf.data(), 8192, 11);
  std::vector<IoPiece> pieces(3);
  for (size_t i = 0; i < 3; ++i) {
    pieces[i].mr = a_.mr;
    pieces[i].data = a_.buf.data() + i * 8192;
    pieces[i].size = 8192;
    pieces[i].remote = i == 1 ? wrong_conn : good;
  }
  XferId id = 0;
  ASSERT_TRUE(a_.ep->readv_async(a1_, pieces, &id).ok());
  Status s = a_.ep->wait(id, kBoundMs);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_EQ(s.message().rfind("piece 1: ", 0), 0u) << s.to_string();
  EXPECT_EQ(a_.ep->poll_async(id).code(), StatusCode::kNotFound);  // retired
  Status st;
  ASSERT_TRUE(a_.ep->piece_status(id, 0, &st).ok());
  EXPECT_TRUE(st.ok()) << st.to_string();
  ASSERT_TRUE(a_.ep->piece_status(id, 1, &st).ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("advertised for connection"), std::string::npos) << st.to_string();
  ASSERT_TRUE(a_.ep->piece_status(id, 2, &st).ok());
  EXPECT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(a_.ep->piece_status(id, 3, &st).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_pattern(a_.buf.data(), 8192, 11), SIZE_MAX);
  EXPECT_EQ(check_pattern(a_.buf.data() + 2 * 8192, 8192, 11), SIZE_MAX);
}

// dereg with a wait: BUSY when the transfer outlives the wait, OK as soon as
// the transfer ends.
TEST_F(TwoConnections, DeregWaitsForTheTransferUsingTheRegion) {
  XferId x;
  ASSERT_TRUE(a_.ep->send_async(a1_, a_.mr, a_.buf.data(), kBuf, &x).ok());  // nobody receives yet
  auto t0 = std::chrono::steady_clock::now();
  Status s = a_.ep->dereg(a_.mr, 100);
  EXPECT_EQ(s.code(), StatusCode::kBusy) << s.to_string();
  EXPECT_GE(ms_since(t0), 100);
  std::thread receiver([&] { EXPECT_TRUE(b_.ep->recv(b1_, b_.mr, b_.buf.data(), kBuf).ok()); });
  s = a_.ep->dereg(a_.mr, kBoundMs);
  EXPECT_TRUE(s.ok()) << s.to_string();
  receiver.join();
  EXPECT_TRUE(a_.ep->wait(x, kBoundMs).ok());
  EXPECT_EQ(a_.ep->dereg(a_.mr, 0).code(), StatusCode::kNotFound);
}

}  // namespace
