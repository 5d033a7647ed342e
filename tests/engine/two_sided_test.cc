// Two-process two-sided transfers, run in direct and bounce mode: sizes from
// 0 B to 256 MiB checked byte for byte, 1,000 concurrent mixed transfers
// polled in random order, undersized receive buffers, dereg while busy, and
// notifications ordered after the data they follow.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "support/status_assert.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

class TwoSided : public ::testing::TestWithParam<PluginMode> {
 protected:
  void SetUp() override {
    if (std::string why = plugin_mode_conflict(GetParam()); !why.empty()) GTEST_SKIP() << why;
    set_test_env(GetParam());
    Status s = make_endpoint(&ep_);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }
  ConnId connect_to(ChildProcess& p) {
    std::string port = p.expect("READY ");
    ConnId c = 0;
    Status s = ep_->connect("127.0.0.1", 0, static_cast<uint16_t>(std::stoi(port)), &c);
    EXPECT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(p.expect("ACCEPTED"), "");
    return c;
  }
  std::unique_ptr<Endpoint> ep_;
};

std::string mode_name(const ::testing::TestParamInfo<PluginMode>& i) { return to_string(i.param); }

TEST_P(TwoSided, SizesZeroTo256MiBByteExact) {
  const std::vector<size_t> sizes = {0, 1, 7, 4095, 4096, 4097, 65536, (1u << 20) - 1, 1u << 20, (1u << 20) + 1,
                                     (4u << 20) + 3, (17u << 20) + 5, 256u << 20};
  const size_t max = 256u << 20;
  ChildProcess peer;
  ASSERT_OK(start_engine_peer(&peer, "echo", {std::to_string(sizes.size()), std::to_string(max)}));
  ConnId c = connect_to(peer);
  std::vector<uint8_t> out(max), in(max + 64);
  fill_pattern(out.data(), max, 42);
  MrId out_mr, in_mr;
  ASSERT_TRUE(ep_->reg(out.data(), out.size(), &out_mr).ok());
  ASSERT_TRUE(ep_->reg(in.data(), in.size(), &in_mr).ok());
  for (size_t size : sizes) {
    std::fill(in.begin(), in.begin() + static_cast<long>(std::min(in.size(), size + 64)), 0);
    XferId sid;
    ASSERT_TRUE(ep_->send_async(c, out_mr, out.data(), size, &sid).ok());
    size_t got = 12345;
    Status r = ep_->recv(c, in_mr, in.data(), max, &got);
    ASSERT_TRUE(r.ok()) << size << ": " << r.to_string();
    ASSERT_TRUE(ep_->wait(sid, 30000).ok());
    EXPECT_EQ(got, size);
    EXPECT_EQ(check_pattern(in.data(), size, 42), kPatternMatches) << "size " << size;
    EXPECT_EQ(in[size], 0) << "byte past the echoed size was written";
  }
  EXPECT_EQ(peer.expect("DONE"), "");
}

// recv_async into a buffer larger than the send: wait() and poll_async()
// report the size of the send the receive matched (inline, plugin path,
// striped over a chunk boundary), and say nothing while it runs.
TEST_P(TwoSided, AsyncReceiveReportsTheSizeOfTheSendItMatched) {
  const std::vector<size_t> sizes = {0, 5, 4096, 300000, (1u << 20) + 1};
  const size_t max = 2u << 20;
  ChildProcess peer;
  ASSERT_OK(start_engine_peer(&peer, "echo", {std::to_string(sizes.size()), std::to_string(max)}));
  ConnId c = connect_to(peer);
  std::vector<uint8_t> out(max), in(max);
  fill_pattern(out.data(), max, 7);
  MrId out_mr, in_mr;
  ASSERT_OK(ep_->reg(out.data(), out.size(), &out_mr));
  ASSERT_OK(ep_->reg(in.data(), in.size(), &in_mr));
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t size = sizes[i];
    XferId rid, sid;
    ASSERT_OK(ep_->recv_async(c, in_mr, in.data(), max, &rid));
    uint64_t bytes = 777;
    ASSERT_TRUE(ep_->poll_async(rid, &bytes).in_progress());  // the echo needs our send first
    EXPECT_EQ(bytes, 777u) << "set before the receive was final";
    ASSERT_OK(ep_->send_async(c, out_mr, out.data(), size, &sid));
    uint64_t sent = 777;
    ASSERT_OK(ep_->wait(sid, 30000, &sent));
    EXPECT_EQ(sent, size);
    if (i % 2 == 0) {
      ASSERT_OK(ep_->wait(rid, 30000, &bytes));
    } else {
      Status s;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while ((s = ep_->poll_async(rid, &bytes)).in_progress() && std::chrono::steady_clock::now() < deadline) {
      }
      ASSERT_OK(s);
    }
    EXPECT_EQ(bytes, size);
    EXPECT_EQ(check_pattern(in.data(), size, 7), kPatternMatches) << "size " << size;
  }
  EXPECT_EQ(peer.expect("DONE"), "");
}

TEST_P(TwoSided, ThousandConcurrentMixedBothDirections) {
  const uint64_t seed = 1234;
  const size_t n = 500;  // per direction
  // Everything through the plugin comms (no inline small transfers), so the
  // per-comm windows and queues carry all 1,000 requests. Both processes.
  setenv("TCPX_EAGER_BYTES", "0", 1);
  ep_.reset();
  Status st = make_endpoint(&ep_);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ChildProcess peer;
  ASSERT_OK(start_engine_peer(&peer, "mixed", {std::to_string(seed), std::to_string(n)}));
  ConnId c = connect_to(peer);
  size_t out_total = 0, in_total = 0;
  std::vector<size_t> out_off(n), in_off(n);
  for (size_t i = 0; i < n; ++i) { out_off[i] = out_total; out_total += mixed_size(seed, i); }
  for (size_t i = 0; i < n; ++i) { in_off[i] = in_total; in_total += mixed_size(seed + 1, i); }
  std::vector<uint8_t> out(out_total + 1), in(in_total + 1);
  for (size_t i = 0; i < n; ++i) fill_pattern(&out[out_off[i]], mixed_size(seed, i), seed * 7000 + i);
  MrId out_mr, in_mr;
  ASSERT_TRUE(ep_->reg(out.data(), out.size(), &out_mr).ok());
  ASSERT_TRUE(ep_->reg(in.data(), in.size(), &in_mr).ok());
  std::vector<XferId> ids;
  for (size_t i = 0; i < n; ++i) {
    XferId a, b;
    ASSERT_TRUE(ep_->send_async(c, out_mr, &out[out_off[i]], mixed_size(seed, i), &a).ok());
    ASSERT_TRUE(ep_->recv_async(c, in_mr, &in[in_off[i]], mixed_size(seed + 1, i), &b).ok());
    ids.push_back(a);
    ids.push_back(b);
  }
  std::mt19937_64 rng(7);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  std::vector<XferId> live = ids;
  while (!live.empty() && std::chrono::steady_clock::now() < deadline) {
    std::shuffle(live.begin(), live.end(), rng);
    std::vector<XferId> still;
    for (XferId id : live) {
      Status s = ep_->poll_async(id);
      if (s.in_progress()) still.push_back(id);
      else ASSERT_TRUE(s.ok()) << s.to_string();
    }
    live.swap(still);
    if (!live.empty()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_TRUE(live.empty()) << live.size() << " transfers unfinished";
  EXPECT_EQ(ep_->poll_async(ids[0]).code(), StatusCode::kNotFound);  // retired
  for (size_t i = 0; i < n; ++i)
    ASSERT_EQ(check_pattern(&in[in_off[i]], mixed_size(seed + 1, i), seed * 1000 + i), kPatternMatches) << i;
  EXPECT_EQ(peer.expect("RESULT "), "ok");
}

TEST_P(TwoSided, UndersizedReceiveFailsOnBothSidesWithoutOverflow) {
  ChildProcess peer;
  ASSERT_OK(start_engine_peer(&peer, "small_recv", {"1000"}));
  ConnId c = connect_to(peer);
  std::vector<uint8_t> out(1 << 20), in(1 << 20);
  fill_pattern(out.data(), out.size(), 3);
  MrId out_mr, in_mr;
  ASSERT_TRUE(ep_->reg(out.data(), out.size(), &out_mr).ok());
  ASSERT_TRUE(ep_->reg(in.data(), in.size(), &in_mr).ok());
  Status s = ep_->send(c, out_mr, out.data(), 5000);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("smaller"), std::string::npos) << s.message();
  EXPECT_EQ(peer.expect("RESULT "), "INVALID_ARGUMENT guard=ok");
  // The connection survives a refused transfer.
  XferId sid;
  ASSERT_TRUE(ep_->send_async(c, out_mr, out.data(), out.size(), &sid).ok());
  size_t got = 0;
  ASSERT_TRUE(ep_->recv(c, in_mr, in.data(), in.size(), &got).ok());
  EXPECT_TRUE(ep_->wait(sid, 10000).ok());
  EXPECT_EQ(got, out.size());
  EXPECT_EQ(check_pattern(in.data(), in.size(), 3), kPatternMatches);
  EXPECT_EQ(peer.expect("AFTER "), "OK");
}

TEST_P(TwoSided, DeregRefusedWhileInUse) {
  ChildProcess peer;
  ASSERT_OK(start_engine_peer(&peer, "echo", {"1", std::to_string(1 << 20)}));
  ConnId c = connect_to(peer);
  std::vector<uint8_t> out(1 << 20), in(1 << 20);
  fill_pattern(out.data(), out.size(), 8);
  MrId out_mr, in_mr;
  ASSERT_TRUE(ep_->reg(out.data(), out.size(), &out_mr).ok());
  ASSERT_TRUE(ep_->reg(in.data(), in.size(), &in_mr).ok());
  XferId rid;
  ASSERT_TRUE(ep_->recv_async(c, in_mr, in.data(), in.size(), &rid).ok());
  EXPECT_EQ(ep_->dereg(in_mr).code(), StatusCode::kBusy);
  ASSERT_TRUE(ep_->send(c, out_mr, out.data(), out.size()).ok());
  ASSERT_TRUE(ep_->wait(rid, 10000).ok());
  EXPECT_EQ(check_pattern(in.data(), in.size(), 8), kPatternMatches);
  EXPECT_TRUE(ep_->dereg(in_mr).ok());
  EXPECT_TRUE(ep_->dereg(out_mr).ok());
  EXPECT_EQ(ep_->dereg(out_mr).code(), StatusCode::kNotFound);
}

TEST_P(TwoSided, NotificationSeenOnlyAfterEarlierDataIsInPlace) {
  const size_t k = 4, size = 3u << 20;
  ChildProcess peer;
  ASSERT_OK(start_engine_peer(&peer, "notify_recv", {std::to_string(k), std::to_string(size), "21"}));
  ConnId c = connect_to(peer);
  std::vector<uint8_t> out(k * size);
  for (size_t i = 0; i < k; ++i) fill_pattern(&out[i * size], size, 21 + i);
  MrId mr;
  ASSERT_TRUE(ep_->reg(out.data(), out.size(), &mr).ok());
  std::vector<XferId> ids(k);
  for (size_t i = 0; i < k; ++i) ASSERT_TRUE(ep_->send_async(c, mr, &out[i * size], size, &ids[i]).ok());
  // Our sends complete once their bytes left; the peer may still be
  // receiving or unpacking. The notification must wait for that there.
  for (XferId id : ids) ASSERT_TRUE(ep_->wait(id, 30000).ok());
  ASSERT_TRUE(ep_->send_notification(c, "done", "4-sends").ok());
  EXPECT_EQ(peer.expect("RESULT "), "ok done 4-sends");
}

INSTANTIATE_TEST_SUITE_P(Modes, TwoSided,
                         ::testing::Values(PluginMode::kDirect, PluginMode::kBounce, PluginMode::kHostOnly),
                         mode_name);

}  // namespace
