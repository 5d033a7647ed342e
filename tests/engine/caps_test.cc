// Bounded resources a peer or a long-lived application can drive, with two
// endpoints in one process (or a raw socket peer): connection bookkeeping is
// freed on close.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

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
  EXPECT_EQ(a->recv_message(first, &m, 0).code(), StatusCode::kPeerClosed);
  EXPECT_EQ(a->send_message(ca, "x", 1).code(), StatusCode::kPeerClosed);
  EXPECT_EQ(a->send_notification(ca, "n", "m").code(), StatusCode::kPeerClosed);
  EXPECT_TRUE(a->close_connection(ca).ok());
  EXPECT_EQ(a->send_message(ca + 1000, "x", 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(a->close_connection(ca + 1000).code(), StatusCode::kNotFound);
  EXPECT_EQ(a->close_connection(0).code(), StatusCode::kNotFound);
}

}  // namespace
