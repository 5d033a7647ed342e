// Connection-level behaviour with two endpoints in one process (no data
// path): hostile or silent clients cannot block the listener, application
// messages arrive once and in order, and a closed connection is sticky.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

TEST(Connection, GarbageAndSilentClientsDoNotBlockOthers) {
  set_test_env(false);
  std::unique_ptr<Endpoint> a, b;
  ASSERT_TRUE(make_endpoint(&a).ok());
  ASSERT_TRUE(make_endpoint(&b).ok());
  uint16_t port = a->local_info().port;
  int silent = raw_connect(port);  // connects, never says anything
  int garbage = raw_connect(port);
  ASSERT_GE(silent, 0);
  ASSERT_GE(garbage, 0);
  const char junk[] = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_EQ(write(garbage, junk, sizeof junk), static_cast<ssize_t>(sizeof junk));
  ConnId cb, ca;
  Status s = b->connect("127.0.0.1", 0, port, &cb);
  ASSERT_TRUE(s.ok()) << s.to_string();
  PeerInfo peer;
  ASSERT_TRUE(a->accept(&ca, &peer, 5000).ok());
  EXPECT_EQ(peer.port, b->local_info().port);
  // Handshakes run concurrently: b's may finish before the garbage is read.
  for (int i = 0; i < 200 && a->last_handshake_error().ok(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(a->last_handshake_error().code(), StatusCode::kProtocolError) << a->last_handshake_error().to_string();
  EXPECT_NE(a->last_handshake_error().message().find("magic"), std::string::npos)
      << a->last_handshake_error().to_string();
  // The garbage sender got its connection closed.
  char buf[256];
  ssize_t n;
  while ((n = read(garbage, buf, sizeof buf)) > 0) {
  }
  EXPECT_EQ(n, 0);
  close(garbage);
  close(silent);
}

TEST(Connection, MessagesOnceInOrderThenPeerClosed) {
  set_test_env(false);
  std::unique_ptr<Endpoint> a, b;
  ASSERT_TRUE(make_endpoint(&a).ok());
  ASSERT_TRUE(make_endpoint(&b).ok());
  ConnId cb, ca;
  ASSERT_TRUE(b->connect(a->local_info(), &cb).ok());
  ASSERT_TRUE(a->accept(&ca, nullptr, 5000).ok());
  std::vector<uint8_t> big(1 << 20);
  fill_pattern(big.data(), big.size(), 4);
  ASSERT_TRUE(b->send_message(cb, "one", 3).ok());
  ASSERT_TRUE(b->send_message(cb, big.data(), big.size()).ok());
  ASSERT_TRUE(b->send_message(cb, "", 0).ok());
  EXPECT_EQ(b->send_message(cb, big.data(), big.size() + 1).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(b->send_notification(cb, "n", "m").ok());
  std::vector<uint8_t> m;
  ASSERT_TRUE(a->recv_message(ca, &m, 5000).ok());
  EXPECT_EQ(std::string(m.begin(), m.end()), "one");
  ASSERT_TRUE(a->recv_message(ca, &m, 5000).ok());
  EXPECT_EQ(m.size(), big.size());
  EXPECT_EQ(check_pattern(m.data(), m.size(), 4), kPatternMatches);
  ASSERT_TRUE(a->recv_message(ca, &m, 5000).ok());
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(a->recv_message(ca, &m, 0).code(), StatusCode::kTimedOut);
  std::vector<Notification> notes;
  for (int i = 0; i < 500 && notes.empty(); ++i) {
    notes = a->get_notifications();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].conn, ca);
  EXPECT_EQ(notes[0].name, "n");
  EXPECT_EQ(notes[0].msg, "m");
  EXPECT_TRUE(a->get_notifications().empty());

  ASSERT_TRUE(b->send_message(cb, "last", 4).ok());
  ASSERT_TRUE(b->close_connection(cb).ok());
  // Queued messages are still delivered, then the close shows.
  ASSERT_TRUE(a->recv_message(ca, &m, 5000).ok());
  EXPECT_EQ(std::string(m.begin(), m.end()), "last");
  EXPECT_EQ(a->recv_message(ca, &m, 5000).code(), StatusCode::kPeerClosed);
  XferId x;
  std::vector<uint8_t> buf(16);
  MrId mr;
  ASSERT_TRUE(b->reg(buf.data(), buf.size(), &mr).ok());
  // b closed cb itself: CLOSED, where a saw its peer go (PEER_CLOSED).
  EXPECT_EQ(b->send_async(cb, mr, buf.data(), 16, &x).code(), StatusCode::kClosed);
  EXPECT_EQ(b->send_message(cb, "x", 1).code(), StatusCode::kClosed);
  EXPECT_EQ(b->send_async(999, mr, buf.data(), 16, &x).code(), StatusCode::kNotFound);
  EXPECT_EQ(b->poll_async(12345).code(), StatusCode::kNotFound);
}

TEST(Connection, Ipv6ControlConnectionAndMetadata) {
  set_test_env(false);
  Config cfg = loopback_config();
  cfg.listen_addr = "::1";
  std::unique_ptr<Endpoint> a, b;
  Status s = make_endpoint(&a, 0, cfg);
  if (!s.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << s.to_string();
  ASSERT_TRUE(make_endpoint(&b, 0, cfg).ok());
  EXPECT_EQ(a->metadata_string(), "[::1]:" + std::to_string(a->local_info().port) + "?0");
  PeerInfo via_blob;
  ASSERT_TRUE(Endpoint::parse_metadata(a->get_metadata(), &via_blob).ok());
  EXPECT_EQ(via_blob.ip, "::1");
  EXPECT_EQ(via_blob.port, a->local_info().port);
  ConnId cb, ca;
  s = b->connect(via_blob, &cb);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_TRUE(a->accept(&ca, nullptr, 5000).ok());
  std::vector<uint8_t> out(300000), in(300000);
  fill_pattern(out.data(), out.size(), 6);
  MrId mo, mi;
  ASSERT_TRUE(b->reg(out.data(), out.size(), &mo).ok());
  ASSERT_TRUE(a->reg(in.data(), in.size(), &mi).ok());
  XferId x;
  ASSERT_TRUE(a->recv_async(ca, mi, in.data(), in.size(), &x).ok());
  ASSERT_TRUE(b->send(cb, mo, out.data(), out.size()).ok());
  ASSERT_TRUE(a->wait(x, 10000).ok());
  EXPECT_EQ(check_pattern(in.data(), in.size(), 6), kPatternMatches);
}

// A send through the plugin completes once its bytes left, so its sender may
// close right after it: the receive still reading those bytes must end OK
// with them, not PEER_CLOSED because the control connection's EOF was read
// first. Then the connection fails as closed by the peer.
TEST(Connection, ReceiveInFlightWhenThePeerClosesInOrderGetsItsData) {
  set_test_env(false);
  std::unique_ptr<Endpoint> a, b;
  ASSERT_TRUE(make_endpoint(&a).ok());
  ASSERT_TRUE(make_endpoint(&b).ok());
  const size_t kBytes = 4u << 20;
  std::vector<uint8_t> out(kBytes), in(kBytes);
  MrId mo, mi;
  ASSERT_TRUE(b->reg(out.data(), out.size(), &mo).ok());
  ASSERT_TRUE(a->reg(in.data(), in.size(), &mi).ok());
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const size_t size = round % 2 == 0 ? (256u << 10) : kBytes;
    fill_pattern(out.data(), size, static_cast<uint32_t>(round));
    std::fill(in.begin(), in.end(), 0);
    ConnId cb, ca;
    ASSERT_TRUE(b->connect(a->local_info(), &cb).ok());
    ASSERT_TRUE(a->accept(&ca, nullptr, 5000).ok());
    XferId x;
    ASSERT_TRUE(a->recv_async(ca, mi, in.data(), size, &x).ok());
    ASSERT_TRUE(b->send(cb, mo, out.data(), size).ok());
    ASSERT_TRUE(b->close_connection(cb).ok());
    Status s = a->wait(x, 10000);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(check_pattern(in.data(), size, static_cast<uint32_t>(round)), kPatternMatches);
    XferId y;
    Status r = a->recv_async(ca, mi, in.data(), size, &y);
    if (r.ok()) r = a->wait(y, 10000);
    EXPECT_EQ(r.code(), StatusCode::kPeerClosed) << r.to_string();
    ASSERT_TRUE(a->close_connection(ca).ok());
  }
}

}  // namespace
