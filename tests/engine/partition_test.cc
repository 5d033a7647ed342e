// A network partition, as opposed to a dead process: the peer runs in a
// network namespace of this test's own, reached over a veth pair, and the
// link is taken down mid-transfer. No FIN or RST ever arrives; the engine
// must notice through TCP_USER_TIMEOUT / keepalive (peer_timeout_ms, 3 s in
// the tests) and fail every outstanding transfer on that connection; a
// loopback connection to another peer still moves checked data afterwards.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "netns_link.h"
#include "support/status_assert.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

using Clock = std::chrono::steady_clock;

// peer_timeout_ms (3 s) plus the slack of TCP's retransmission timer.
constexpr int kDetectBoundMs = 8000;

TEST(NetworkPartition, SilentLinkFailsOutstandingTransfersOthersComplete) {
  NetnsLink link;
  if (!link.ok()) GTEST_SKIP() << "no test network namespace: " << link.why();
  // The plugin here uses the veth and loopback; the control listener the
  // veth, so the namespaced peer can reach it.
  set_test_env(false);
  setenv("TCPX_P2P_TCP_IFNAME", (link.host_if() + ",lo").c_str(), 1);
  Config cfg = loopback_config();
  cfg.listen_addr = link.host_ip();
  std::unique_ptr<Endpoint> ep;
  Status s = make_endpoint(&ep, 0, cfg);
  ASSERT_TRUE(s.ok()) << s.to_string();

  const size_t big = 8u << 20;
  ChildProcess remote, local;
  ASSERT_OK(start_engine_peer(&remote, "sink", {},
                              {"TCPX_P2P_TCP_IFNAME=" + link.peer_if(), "TCPX_TEST_LISTEN_ADDR=" + link.peer_ip()},
                              link.exec_prefix()));
  ASSERT_OK(start_engine_peer(&local, "echo", {"1", std::to_string(big)}, {"TCPX_P2P_TCP_IFNAME=lo"}));
  std::string port = remote.expect("READY ");
  ASSERT_FALSE(port.empty()) << "the namespaced peer did not start";
  ConnId cr, cl;
  s = ep->connect(link.peer_ip(), 0, static_cast<uint16_t>(std::stoi(port)), &cr);
  ASSERT_TRUE(s.ok()) << s.to_string();
  s = ep->connect("127.0.0.1", 0, static_cast<uint16_t>(std::stoi(local.expect("READY "))), &cl);
  ASSERT_TRUE(s.ok()) << s.to_string();

  std::vector<uint8_t> out(big), in(big);
  fill_pattern(out.data(), out.size(), 91);
  MrId out_mr, in_mr;
  ASSERT_TRUE(ep->reg(out.data(), out.size(), &out_mr).ok());
  ASSERT_TRUE(ep->reg(in.data(), in.size(), &in_mr).ok());
  // The path works before the cut (the sink checks nothing; it receives).
  ASSERT_TRUE(ep->send(cr, out_mr, out.data(), big).ok());
  ASSERT_EQ(remote.expect("GOT1 "), "OK");

  // Outstanding across the link: sends (the sink posted one more receive, so
  // the first may finish) and a receive nobody will match.
  std::vector<XferId> doomed;
  for (int i = 0; i < 3; ++i) {
    XferId id;
    ASSERT_TRUE(ep->send_async(cr, out_mr, out.data(), big, &id).ok());
    doomed.push_back(id);
  }
  XferId rid;
  ASSERT_TRUE(ep->recv_async(cr, in_mr, in.data(), big, &rid).ok());
  doomed.push_back(rid);

  ASSERT_TRUE(link.cut());
  auto t0 = Clock::now();
  for (size_t i = 0; i < doomed.size(); ++i) {
    Status r = ep->wait(doomed[i], kDetectBoundMs);
    if (i == 0 && r.ok()) continue;
    EXPECT_FALSE(r.ok()) << i;
    EXPECT_NE(r.code(), StatusCode::kTimedOut) << i << ": the wait ran out before the engine noticed";
    EXPECT_TRUE(r.code() == StatusCode::kPeerClosed || r.code() == StatusCode::kTransportError)
        << i << ": " << r.to_string();
  }
  EXPECT_LT(ms_since(t0), kDetectBoundMs);
  XferId late;
  EXPECT_FALSE(ep->send_async(cr, out_mr, out.data(), 10, &late).ok());

  // The loopback peer echoes a transfer intact after the partition.
  XferId back;
  std::fill(in.begin(), in.end(), uint8_t{0});
  ASSERT_TRUE(ep->recv_async(cl, in_mr, in.data(), big, &back).ok());
  ASSERT_TRUE(ep->send(cl, out_mr, out.data(), big).ok());
  ASSERT_TRUE(ep->wait(back, 30000).ok());
  EXPECT_EQ(check_pattern(in.data(), big, 91), kPatternMatches);
  EXPECT_EQ(local.expect("DONE"), "");
}

}  // namespace
