// The newer flavour across two processes: a NIXL-style initiator here and a
// target agent in uccl_p2p_peer. READ and WRITE move data with a
// notification each; when the target process is killed, a transfer posted
// afterwards fails (xfer_result) instead of hanging, and teardown is prompt.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <sstream>

#include "nixl_agent.h"
#include "support/child_process.h"
#include "support/hex.h"
#include "support/pattern.h"
#include "support/status_assert.h"

namespace uccl_p2p_test {
namespace {

using tcpx::test::check_pattern;
using tcpx::test::ChildOptions;
using tcpx::test::ChildProcess;
using tcpx::test::fill_pattern;
using tcpx::test::kPatternMatches;

// uccl_p2p_peer speaks lines on its stdin/stdout: sends cmd (none when
// empty) and returns the next line, "" if none came.
std::string ask(ChildProcess& peer, const std::string& cmd) {
  if (!cmd.empty() && !peer.write_line(cmd).ok()) return "";
  std::string line;
  return peer.read_line(&line, 30000).ok() ? line : "";
}

// "MD info addr hex" -> the peer's connection info and buffer.
bool parse_md(const std::string& line, std::string* info, RemoteBuffer* rb) {
  std::istringstream in(line);
  std::string tag, hex;
  in >> tag >> *info >> rb->addr >> hex;
  if (tag != "MD" || !tcpx::test::from_hex(hex, rb->fifo, FIFO_SIZE)) return false;
  rb->len = 1 << 20;
  return true;
}

int wait_result(uccl_conn_t* c, uint64_t tid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int rc = UCCL_P2P_IN_PROGRESS;
  while (rc == UCCL_P2P_IN_PROGRESS && std::chrono::steady_clock::now() < deadline) {
    rc = uccl_engine_xfer_result(c, tid, nullptr, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return rc;
}

TEST(UcclP2pTwoProcess, ReadWriteNotifyThenPeerKilled) {
  ChildProcess peer;
  ASSERT_OK(peer.spawn({UCCL_P2P_PEER_BIN}, ChildOptions::line_protocol()));
  std::string info;
  RemoteBuffer remote;
  ASSERT_TRUE(parse_md(ask(peer, ""), &info, &remote));
  std::vector<uint8_t> buf(1 << 20, 0);  // outlives the agent (dereg before free)
  auto owned = std::make_unique<NixlAgent>("initiator");
  NixlAgent& me = *owned;
  RemoteBuffer mine;
  ASSERT_TRUE(me.register_buffer(buf.data(), buf.size(), &mine));
  ASSERT_TRUE(me.connect_to("peer", info));

  uint64_t tid = 0;
  ASSERT_EQ(me.post(true, "peer", {{buf.data(), buf.data(), &remote, remote.addr, buf.size()}}, &tid), 0);
  ASSERT_TRUE(me.wait_and_notify("peer", tid, "read-done", 30000));
  ASSERT_EQ(check_pattern(buf.data(), buf.size(), 7), kPatternMatches);
  EXPECT_EQ(ask(peer, "NOTIFS 1"), "NOTIFS 1");

  fill_pattern(buf.data(), buf.size(), 42);
  ASSERT_EQ(me.post(false, "peer", {{buf.data(), buf.data(), &remote, remote.addr, 300000}}, &tid), 0);
  ASSERT_TRUE(me.wait_and_notify("peer", tid, "write-done", 30000));
  EXPECT_EQ(ask(peer, "CHECK 42 300000"), "OK");
  EXPECT_EQ(ask(peer, "NOTIFS 1"), "NOTIFS 1");

  peer.kill_and_reap();
  int rc = me.post(true, "peer", {{buf.data(), buf.data(), &remote, remote.addr, 4096}}, &tid);
  if (rc == 0) rc = wait_result(me.conn("peer"), tid);
  EXPECT_LT(rc, 0) << "a transfer to a dead peer must fail";
  // NIXL's teardown must not wait on the dead peer.
  auto t0 = std::chrono::steady_clock::now();
  owned.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

}  // namespace
}  // namespace uccl_p2p_test
