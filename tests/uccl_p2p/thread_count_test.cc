// A libuccl_p2p connection costs no thread: its grant service runs on the
// engine's progress path (Endpoint::serve_messages). Counted from
// /proc/<pid>/status: after connect + accept the process has exactly the
// threads it had before (the engine's own two per endpoint: progress and
// control listener, which also runs the handshakes). And the target of a read
// or write calls nothing: in the two-process test the target sits in a
// blocking read of its stdin while the initiator's transfers complete.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nixl_agent.h"
#include "support/child_process.h"
#include "support/hex.h"
#include "support/pattern.h"
#include "support/status_assert.h"

namespace uccl_p2p_test {
namespace {

constexpr int kTimeoutMs = 20000;

// "Threads:" of /proc/<pid>/status (pid 0: this process); -1 if unreadable.
int thread_count(pid_t pid = 0) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/status") : "/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

std::vector<uint8_t> pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  tcpx::test::fill_pattern(v.data(), n, seed);
  return v;
}

// Polls xfer_result (the initiator's only calls) until final.
int wait_result(uccl_conn_t* c, uint64_t tid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
  int rc = UCCL_P2P_IN_PROGRESS;
  while (rc == UCCL_P2P_IN_PROGRESS && std::chrono::steady_clock::now() < deadline) {
    rc = uccl_engine_xfer_result(c, tid, nullptr, 0);
    if (rc == UCCL_P2P_IN_PROGRESS) std::this_thread::yield();
  }
  return rc;
}

// One write of `src` into the target's prepared region, then one read back
// into `dst`, over conn. Returns the two result codes.
std::pair<int, int> write_then_read(uccl_conn_t* c, uccl_mr_t src_mr, std::vector<uint8_t>& src, uccl_mr_t dst_mr,
                                    std::vector<uint8_t>& dst, const char* target_fifo, uint64_t target_addr) {
  FifoItem item;
  deserialize_fifo_item(target_fifo, &item);
  uccl_engine_update_fifo(item, target_addr, static_cast<uint32_t>(src.size()));
  uint64_t tid = 0;
  int w = uccl_engine_write(c, src_mr, src.data(), src.size(), item, &tid);
  if (w == UCCL_P2P_OK) w = wait_result(c, tid);
  int r = uccl_engine_read(c, dst_mr, dst.data(), dst.size(), item, &tid);
  if (r == UCCL_P2P_OK) r = wait_result(c, tid);
  return {w, r};
}

// Two engines in this process, no listener threads of the application's:
// the test thread connects and accepts itself. Connections 2..5 add no
// thread to what the process had with one; each of them moves data.
TEST(UcclP2pThreads, ConnectionsCostNoThread) {
  constexpr int kExtraConns = 4;
  constexpr size_t kLen = 256 * 1024;
  std::vector<uint8_t> tbuf(kLen, 0), src = pattern(kLen, 5), dst(kLen, 0);
  uccl_engine_t* target = uccl_engine_create(1, false);
  uccl_engine_t* initiator = uccl_engine_create(1, false);
  ASSERT_NE(target, nullptr);
  ASSERT_NE(initiator, nullptr);
  uccl_mr_t tmr = 0, smr = 0, dmr = 0;
  ASSERT_EQ(uccl_engine_reg(target, reinterpret_cast<uintptr_t>(tbuf.data()), kLen, tmr), 0);
  ASSERT_EQ(uccl_engine_reg(initiator, reinterpret_cast<uintptr_t>(src.data()), kLen, smr), 0);
  ASSERT_EQ(uccl_engine_reg(initiator, reinterpret_cast<uintptr_t>(dst.data()), kLen, dmr), 0);
  char fifo[FIFO_SIZE];
  ASSERT_EQ(uccl_engine_prepare_fifo(target, tmr, tbuf.data(), kLen, fifo), 0);

  char* md = nullptr;
  ASSERT_EQ(uccl_engine_get_metadata(target, &md), 0);
  std::string info(md);
  delete[] md;
  size_t colon = info.find(':'), q = info.find('?');
  std::string ip = info.substr(0, colon), gpu = info.substr(q + 1);
  int port = std::stoi(info.substr(colon + 1, q - colon - 1));

  std::vector<uccl_conn_t*> conns;  // initiator side, accepted side, ...
  auto connect_pair = [&] {
    uccl_conn_t* c = uccl_engine_connect(initiator, ip.c_str(), gpu.c_str(), port, false);
    char peer_ip[64];
    int peer_gpu = -1;
    uccl_conn_t* a = c ? uccl_engine_accept(target, peer_ip, sizeof(peer_ip), &peer_gpu) : nullptr;
    conns.push_back(c);
    conns.push_back(a);
    return c != nullptr && a != nullptr;
  };

  const int with_engines = thread_count();
  ASSERT_TRUE(connect_pair());
  // The first connection and transfer would also start whatever an engine
  // starts only once (nothing today).
  auto [w0, r0] = write_then_read(conns[0], smr, src, dmr, dst, fifo, reinterpret_cast<uint64_t>(tbuf.data()));
  ASSERT_EQ(w0, UCCL_P2P_OK);
  ASSERT_EQ(r0, UCCL_P2P_OK);
  EXPECT_EQ(dst, src);
  const int with_one = thread_count();

  for (int i = 0; i < kExtraConns; ++i) {
    ASSERT_TRUE(connect_pair()) << "connection " << i + 2;
    tcpx::test::fill_pattern(src.data(), kLen, 11 + i);  // in place: src stays registered
    std::fill(dst.begin(), dst.end(), 0);
    auto [w, r] = write_then_read(conns[conns.size() - 2], smr, src, dmr, dst, fifo,
                                  reinterpret_cast<uint64_t>(tbuf.data()));
    ASSERT_EQ(w, UCCL_P2P_OK) << "connection " << i + 2;
    ASSERT_EQ(r, UCCL_P2P_OK) << "connection " << i + 2;
    EXPECT_EQ(dst, src) << "connection " << i + 2;
    EXPECT_EQ(tbuf, src) << "connection " << i + 2;
  }
  const int with_five = thread_count();
  std::printf("threads: %d with two engines, %d with 1 connection pair, %d with %d\n", with_engines, with_one,
              with_five, 1 + kExtraConns);
  EXPECT_EQ(with_one, with_engines);
  EXPECT_EQ(with_five, with_one);

  for (auto* c : conns) uccl_engine_conn_destroy(c);
  uccl_engine_mr_destroy(initiator, smr);
  uccl_engine_mr_destroy(initiator, dmr);
  uccl_engine_mr_destroy(target, tmr);
  uccl_engine_destroy(initiator);
  uccl_engine_destroy(target);
}

// uccl_p2p_peer speaks lines on its stdin/stdout: sends cmd (none when
// empty) and returns the next line, "" if none came.
std::string ask(tcpx::test::ChildProcess& peer, const std::string& cmd) {
  if (!cmd.empty() && !peer.write_line(cmd).ok()) return "";
  std::string line;
  return peer.read_line(&line, kTimeoutMs).ok() ? line : "";
}

// The target agent (uccl_p2p_peer) in its own process, blocked in a read of
// its stdin: it calls nothing while this process writes to and reads from
// its buffer; its thread count is the same before and after our connection.
TEST(UcclP2pThreads, TargetProcessCallsNothingAndGainsNoThread) {
  tcpx::test::ChildProcess peer;
  ASSERT_OK(peer.spawn({UCCL_P2P_PEER_BIN}, tcpx::test::ChildOptions::line_protocol()));
  // "MD <conn_info> <addr> <hex FifoItem>": the peer is set up (including
  // its NIXL-style connection to itself) and now blocks on its stdin.
  std::istringstream md(ask(peer, ""));
  std::string tag, info, hex;
  uint64_t taddr = 0;
  md >> tag >> info >> taddr >> hex;
  ASSERT_EQ(tag, "MD");
  char fifo[FIFO_SIZE];
  ASSERT_TRUE(tcpx::test::from_hex(hex, fifo, FIFO_SIZE));
  const int peer_before = thread_count(peer.pid());
  ASSERT_GT(peer_before, 0);

  constexpr size_t kLen = 300000;
  std::vector<uint8_t> src = pattern(kLen, 42), dst(kLen, 0);
  uccl_engine_t* e = uccl_engine_create(1, false);
  ASSERT_NE(e, nullptr);
  uccl_mr_t smr = 0, dmr = 0;
  ASSERT_EQ(uccl_engine_reg(e, reinterpret_cast<uintptr_t>(src.data()), kLen, smr), 0);
  ASSERT_EQ(uccl_engine_reg(e, reinterpret_cast<uintptr_t>(dst.data()), kLen, dmr), 0);
  size_t colon = info.find(':'), q = info.find('?');
  uccl_conn_t* c = uccl_engine_connect(e, info.substr(0, colon).c_str(), info.substr(q + 1).c_str(),
                                       std::stoi(info.substr(colon + 1, q - colon - 1)), false);
  ASSERT_NE(c, nullptr);
  // A write lands in the peer's buffer and reads back, with the peer's
  // application blocked in getline the whole time.
  auto [w, r] = write_then_read(c, smr, src, dmr, dst, fifo, taddr);
  EXPECT_EQ(w, UCCL_P2P_OK);
  EXPECT_EQ(r, UCCL_P2P_OK);
  EXPECT_EQ(dst, src);
  // The peer accepted our connection (its grant service answered both
  // transfers) and has no more threads than before.
  const int peer_after = thread_count(peer.pid());
  std::printf("peer threads: %d before our connection, %d with it\n", peer_before, peer_after);
  EXPECT_EQ(peer_after, peer_before);
  // The peer sees the bytes we wrote, once it has our notification (which
  // follows the data, and is what orders the peer's read after the engine's
  // write: the only synchronisation a sanitizer can see in the peer).
  notify_msg_t note = {};
  std::strncpy(note.name, "initiator", sizeof(note.name) - 1);
  ASSERT_EQ(uccl_engine_send_notif(c, &note), 0);
  EXPECT_EQ(ask(peer, "NOTIFS 1"), "NOTIFS 1");
  EXPECT_EQ(ask(peer, "CHECK 42 300000"), "OK");

  uccl_engine_conn_destroy(c);
  uccl_engine_mr_destroy(e, smr);
  uccl_engine_mr_destroy(e, dmr);
  uccl_engine_destroy(e);
  ASSERT_OK(peer.write_line("QUIT"));
  EXPECT_EQ(peer.wait_exit(kTimeoutMs), 0);  // it tears down like NIXL and exits cleanly
}

}  // namespace
}  // namespace uccl_p2p_test
