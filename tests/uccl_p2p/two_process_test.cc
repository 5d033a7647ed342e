// The newer flavour across two processes: a NIXL-style initiator here and a
// target agent in uccl_p2p_peer. READ and WRITE move data with a
// notification each; when the target process is killed, a transfer posted
// afterwards fails (xfer_result) instead of hanging, and teardown is prompt.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <sstream>

#include "nixl_agent.h"

namespace uccl_p2p_test {
namespace {

uint8_t pattern_byte(uint8_t seed, size_t i) { return static_cast<uint8_t>(seed + i * 7); }

// The peer process with a line protocol on its stdin/stdout.
class Peer {
 public:
  Peer() {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      close(in[1]);
      close(out[0]);
      execl(UCCL_P2P_PEER_BIN, UCCL_P2P_PEER_BIN, static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
  }
  ~Peer() {
    if (to_) fclose(to_);
    if (from_) fclose(from_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string ask(const std::string& cmd) {
    if (!cmd.empty()) {
      fprintf(to_, "%s\n", cmd.c_str());
      fflush(to_);
    }
    char line[512];
    return from_ && fgets(line, sizeof(line), from_) ? std::string(line) : "";
  }
  void kill9() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

// "MD info addr hex" -> the peer's connection info and buffer.
bool parse_md(const std::string& line, std::string* info, RemoteBuffer* rb) {
  std::istringstream in(line);
  std::string tag, hex;
  in >> tag >> *info >> rb->addr >> hex;
  if (tag != "MD" || hex.size() != 2 * FIFO_SIZE) return false;
  for (size_t i = 0; i < FIFO_SIZE; ++i) rb->fifo[i] = static_cast<char>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
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
  Peer peer;
  std::string info;
  RemoteBuffer remote;
  ASSERT_TRUE(parse_md(peer.ask(""), &info, &remote));
  std::vector<uint8_t> buf(1 << 20, 0);  // outlives the agent (dereg before free)
  auto owned = std::make_unique<NixlAgent>("initiator");
  NixlAgent& me = *owned;
  RemoteBuffer mine;
  ASSERT_TRUE(me.register_buffer(buf.data(), buf.size(), &mine));
  ASSERT_TRUE(me.connect_to("peer", info));

  uint64_t tid = 0;
  ASSERT_EQ(me.post(true, "peer", {{buf.data(), buf.data(), &remote, remote.addr, buf.size()}}, &tid), 0);
  ASSERT_TRUE(me.wait_and_notify("peer", tid, "read-done", 30000));
  for (size_t i = 0; i < buf.size(); ++i) ASSERT_EQ(buf[i], pattern_byte(7, i)) << i;
  EXPECT_EQ(peer.ask("NOTIFS 1"), "NOTIFS 1\n");

  for (size_t i = 0; i < buf.size(); ++i) buf[i] = pattern_byte(42, i);
  ASSERT_EQ(me.post(false, "peer", {{buf.data(), buf.data(), &remote, remote.addr, 300000}}, &tid), 0);
  ASSERT_TRUE(me.wait_and_notify("peer", tid, "write-done", 30000));
  EXPECT_EQ(peer.ask("CHECK 42 300000"), "OK\n");
  EXPECT_EQ(peer.ask("NOTIFS 1"), "NOTIFS 1\n");

  peer.kill9();
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
