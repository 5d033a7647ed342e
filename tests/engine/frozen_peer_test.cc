// A peer whose process is frozen (SIGSTOP) keeps its kernel acknowledging
// TCP, so no EOF, reset or keepalive failure ever comes, and the strict
// plugin never fails the requests either. The engine's heartbeat
// (engine/liveness.h) must declare it dead: outstanding transfers fail with
// PEER_CLOSED ("peer stopped responding") within peer_timeout_ms + 1 s, an
// idle connection to it fails too, and a live but idle peer is never
// declared dead.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/status_assert.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kPeerTimeoutMs = 1000;

class FrozenPeer : public ::testing::Test {
 protected:
  void SetUp() override {
    set_test_env(false);
    Config cfg = loopback_config();
    cfg.peer_timeout_ms = kPeerTimeoutMs;
    Status s = make_endpoint(&ep_, 0, cfg);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }
  ConnId connect_to(ChildProcess& p) {
    ConnId c = 0;
    Status s = ep_->connect("127.0.0.1", 0, static_cast<uint16_t>(std::stoi(p.expect("READY "))), &c);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return c;
  }
  // kill() returns before the peer has stopped: a thread of it running on
  // another CPU goes on until the signal reaches it, and on a loaded host it
  // answered the send posted next (a CTS, after which the send completes
  // once its bytes are in the kernel's buffers). Wait until every thread of
  // it shows state T.
  static void freeze(ChildProcess& p) {
    ASSERT_EQ(kill(p.pid(), SIGSTOP), 0);
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!all_threads_stopped(p.pid())) {
      ASSERT_LT(Clock::now(), deadline) << "peer " << p.pid() << " did not stop";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  static bool all_threads_stopped(pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/task";
    std::error_code ec;
    int threads = 0;
    for (const auto& t : std::filesystem::directory_iterator(dir, ec)) {
      std::ifstream stat(t.path() / "stat");
      std::string line;
      std::getline(stat, line);
      // pid (comm) state ...: the state follows the last ')'.
      const size_t close = line.rfind(')');
      if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'T') return false;
      ++threads;
    }
    return !ec && threads > 0;
  }
  std::unique_ptr<Endpoint> ep_;
};

void expect_stopped_responding(const Status& s) {
  EXPECT_EQ(s.code(), StatusCode::kPeerClosed) << s.to_string();
  EXPECT_NE(s.message().find("peer stopped responding"), std::string::npos) << s.to_string();
}

TEST_F(FrozenPeer, OutstandingTransfersFailWithinTheTimeout) {
  const size_t big = 32u << 20;
  ChildProcess peer, other;
  ASSERT_OK(start_engine_peer(&peer, "echo", {"1", std::to_string(big)}));
  ASSERT_OK(start_engine_peer(&other, "echo", {"1", std::to_string(big)}));
  ConnId c = connect_to(peer);
  ConnId co = connect_to(other);
  std::vector<uint8_t> out(big), in(big);
  fill_pattern(out.data(), big, 9);
  MrId out_mr, in_mr;
  ASSERT_TRUE(ep_->reg(out.data(), out.size(), &out_mr).ok());
  ASSERT_TRUE(ep_->reg(in.data(), in.size(), &in_mr).ok());
  freeze(peer);
  // A send the frozen peer never takes and a receive it never sends.
  XferId send_id, recv_id;
  ASSERT_TRUE(ep_->send_async(c, out_mr, out.data(), big, &send_id).ok());
  ASSERT_TRUE(ep_->recv_async(c, in_mr, in.data(), big, &recv_id).ok());
  auto t0 = Clock::now();
  const long bound = kPeerTimeoutMs + 1000;
  expect_stopped_responding(ep_->wait(send_id, static_cast<int>(bound)));
  expect_stopped_responding(ep_->wait(recv_id, static_cast<int>(bound)));
  EXPECT_LT(ms_since(t0), bound);
  RecordProperty("detected_after_ms", static_cast<int>(ms_since(t0)));
  // The other peer is unaffected: its echo comes back intact.
  XferId os;
  ASSERT_TRUE(ep_->send_async(co, out_mr, out.data(), big, &os).ok());
  size_t got = 0;
  ASSERT_TRUE(ep_->recv(co, in_mr, in.data(), big, &got).ok());
  ASSERT_TRUE(ep_->wait(os, 30000).ok());
  EXPECT_EQ(got, big);
  EXPECT_EQ(check_pattern(in.data(), big, 9), kPatternMatches);
  EXPECT_EQ(other.expect("DONE"), "");
}

TEST_F(FrozenPeer, AnIdleConnectionToAFrozenPeerFailsToo) {
  ChildProcess peer;
  ASSERT_OK(start_engine_peer(&peer, "echo", {"1", "4096"}));
  ConnId c = connect_to(peer);
  freeze(peer);
  auto t0 = Clock::now();
  std::vector<uint8_t> m;
  // Idle detection takes about 1.5 x the timeout (liveness.h).
  Status s = ep_->recv_message(c, &m, 2 * kPeerTimeoutMs + 1000);
  expect_stopped_responding(s);
  EXPECT_LT(ms_since(t0), 2 * kPeerTimeoutMs + 1000);
}

TEST_F(FrozenPeer, ALiveIdlePeerIsNeverDeclaredDead) {
  ChildProcess peer;
  ASSERT_OK(start_engine_peer(&peer, "echo", {"1", "4096"}));
  ConnId c = connect_to(peer);
  // Three timeouts of silence from the application: only heartbeats flow.
  std::vector<uint8_t> m;
  EXPECT_EQ(ep_->recv_message(c, &m, 3 * kPeerTimeoutMs).code(), StatusCode::kTimedOut);
  std::vector<uint8_t> buf(4096), back(4096);
  fill_pattern(buf.data(), buf.size(), 3);
  MrId mr, mr2;
  ASSERT_TRUE(ep_->reg(buf.data(), buf.size(), &mr).ok());
  ASSERT_TRUE(ep_->reg(back.data(), back.size(), &mr2).ok());
  ASSERT_TRUE(ep_->send(c, mr, buf.data(), buf.size()).ok());
  size_t got = 0;
  Status r = ep_->recv(c, mr2, back.data(), back.size(), &got);
  ASSERT_TRUE(r.ok()) << r.to_string();
  EXPECT_EQ(check_pattern(back.data(), got, 3), kPatternMatches);
  EXPECT_EQ(peer.expect("DONE"), "");
}

}  // namespace
