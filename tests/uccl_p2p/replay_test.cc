// NIXL main's call sequence over libuccl_p2p.so, as its UCCL gtest drives it:
// two agents per test (four engines per process over the READ and WRITE
// runs), each connected to its own address with same_process=true and to the
// other, a vector READ and a vector WRITE with contents checked, exactly one
// notification per transfer, teardown through stop_accept, and nothing
// logged at WARN on the way.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>
#include <vector>

#include "nixl_agent.h"

namespace uccl_p2p_test {
namespace {

constexpr int kTimeoutMs = 20000;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

struct Pair {
  std::unique_ptr<NixlAgent> initiator = std::make_unique<NixlAgent>("initiator");
  std::unique_ptr<NixlAgent> target = std::make_unique<NixlAgent>("target");
  std::vector<uint8_t> ibuf = pattern(1 << 20, 1), tbuf = pattern(1 << 20, 101);
  RemoteBuffer imd, tmd;

  void setup() {
    ASSERT_TRUE(initiator->ok() && target->ok());
    ASSERT_TRUE(initiator->register_buffer(ibuf.data(), ibuf.size(), &imd));
    ASSERT_TRUE(target->register_buffer(tbuf.data(), tbuf.size(), &tmd));
    ASSERT_TRUE(initiator->connect_to("target", target->conn_info()));
    ASSERT_TRUE(target->connect_to("initiator", initiator->conn_info()));
  }
};

// Three descriptors of different sizes at different offsets (NIXL's vectors).
std::vector<NixlAgent::Piece> pieces(Pair& p) {
  std::vector<NixlAgent::Piece> v;
  size_t offs[] = {0, 4096, 300000}, lens[] = {256, 65536, 700000};
  for (int i = 0; i < 3; ++i)
    v.push_back({p.ibuf.data(), p.ibuf.data() + offs[i], &p.tmd, p.tmd.addr + offs[i] + 16, lens[i]});
  return v;
}

void run(bool is_read) {
  testing::internal::CaptureStderr();
  {
    Pair p;
    p.setup();
    if (testing::Test::HasFatalFailure()) return;
    auto v = pieces(p);
    uint64_t tid = 0;
    ASSERT_EQ(p.initiator->post(is_read, "target", v, &tid), 0);
    ASSERT_TRUE(p.initiator->wait_and_notify("target", tid, "notification", kTimeoutMs));
    for (auto& piece : v) {
      auto* remote = p.tbuf.data() + (piece.remote_addr - p.tmd.addr);
      EXPECT_EQ(0, std::memcmp(piece.local, remote, piece.len));
    }
    auto n = wait_notifs(1, kTimeoutMs);
    ASSERT_EQ(n.size(), 1u);
    EXPECT_STREQ(n[0].name, "initiator");
    EXPECT_STREQ(n[0].msg, "notification");
    // Exactly one: nothing more turns up a little later either.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(uccl_engine_get_notifs().empty());
    // Each agent's listener accepted its own same_process connection and the
    // other's connection.
    EXPECT_EQ(p.initiator->accepted(), 2u);
    EXPECT_EQ(p.target->accepted(), 2u);
  }  // teardown: stop_accept unblocks both listener threads
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("WARN"), std::string::npos) << err;
}

TEST(UcclP2pReplay, ReadVectorThenWriteVectorLikeNixlGtest) {
  auto t0 = std::chrono::steady_clock::now();
  run(/*is_read=*/true);
  run(/*is_read=*/false);
  // Teardown never waits on a blocked accept for long.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
}

TEST(UcclP2pReplay, SameProcessConnectionMovesData) {
  auto src = pattern(200000, 3);  // buffers outlive the agent (dereg before free)
  std::vector<uint8_t> dst(200000, 0);
  NixlAgent a("self");
  ASSERT_TRUE(a.ok());
  RemoteBuffer smd, dmd;
  ASSERT_TRUE(a.register_buffer(src.data(), src.size(), &smd));  // also connects to itself
  ASSERT_TRUE(a.register_buffer(dst.data(), dst.size(), &dmd));
  uint64_t tid = 0;
  // WRITE src -> dst through the engine's connection to its own address.
  ASSERT_EQ(a.post(false, "self", {{src.data(), src.data(), &dmd, dmd.addr, src.size()}}, &tid), 0);
  ASSERT_TRUE(a.wait_and_notify("self", tid, "self-note", kTimeoutMs));
  EXPECT_EQ(src, dst);
  auto n = wait_notifs(1, kTimeoutMs);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_STREQ(n[0].msg, "self-note");
}

TEST(UcclP2pReplay, FourEnginesInARingAtOnce) {
  constexpr int kN = 4;
  std::vector<std::vector<uint8_t>> bufs;  // outlive the agents (dereg before free)
  std::vector<std::unique_ptr<NixlAgent>> agents;
  std::vector<RemoteBuffer> mds(kN);
  for (int i = 0; i < kN; ++i) {
    agents.push_back(std::make_unique<NixlAgent>("agent" + std::to_string(i)));
    ASSERT_TRUE(agents[i]->ok());
    bufs.push_back(pattern(100000, static_cast<uint8_t>(i * 50)));
  }
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(agents[i]->register_buffer(bufs[i].data(), bufs[i].size(), &mds[i]));
  for (int i = 0; i < kN; ++i) {
    int next = (i + 1) % kN;
    ASSERT_TRUE(agents[i]->connect_to(agents[next]->name(), agents[next]->conn_info()));
  }
  // Every agent reads the first half of its successor's buffer into its own
  // second half, all at once.
  std::vector<uint64_t> tids(kN);
  for (int i = 0; i < kN; ++i) {
    int next = (i + 1) % kN;
    ASSERT_EQ(agents[i]->post(true, agents[next]->name(),
                              {{bufs[i].data(), bufs[i].data() + 50000, &mds[next], mds[next].addr, 50000}}, &tids[i]),
              0);
  }
  for (int i = 0; i < kN; ++i)
    ASSERT_TRUE(agents[i]->wait_and_notify(agents[(i + 1) % kN]->name(), tids[i], "ring", kTimeoutMs));
  for (int i = 0; i < kN; ++i) {
    int next = (i + 1) % kN;
    EXPECT_EQ(0, std::memcmp(bufs[i].data() + 50000, bufs[next].data(), 50000)) << "agent " << i;
  }
  EXPECT_EQ(wait_notifs(kN, kTimeoutMs).size(), static_cast<size_t>(kN));
}

TEST(UcclP2pLifecycle, StopAcceptUnblocksAPendingAcceptAtOnce) {
  uccl_engine_t* e = uccl_engine_create(4, false);
  ASSERT_NE(e, nullptr);
  std::atomic<bool> returned{false};
  uccl_conn_t* got = reinterpret_cast<uccl_conn_t*>(1);
  std::thread t([&] {
    char ip[64];
    int gpu = -1;
    got = uccl_engine_accept(e, ip, sizeof(ip), &gpu);
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(returned.load());
  auto t0 = std::chrono::steady_clock::now();
  uccl_engine_stop_accept(e);
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  EXPECT_EQ(got, nullptr);
  // Sticky: a later accept returns NULL at once.
  char ip[64];
  int gpu = -1;
  EXPECT_EQ(uccl_engine_accept(e, ip, sizeof(ip), &gpu), nullptr);
  uccl_engine_destroy(e);
}

TEST(UcclP2pLifecycle, HonestAboutNoIpcAndNoTwoSided) {
  uccl_engine_t* e = uccl_engine_create(4, false);
  ASSERT_NE(e, nullptr);
  char ipc[IPC_INFO_SIZE];
  std::memset(ipc, 0x5a, sizeof(ipc));
  bool has_ipc = true;
  EXPECT_NE(uccl_engine_get_ipc_info(e, 0x1000, ipc, &has_ipc), 0);
  EXPECT_FALSE(has_ipc);
  EXPECT_TRUE(std::all_of(ipc, ipc + IPC_INFO_SIZE, [](char c) { return c == 0; }));
  EXPECT_NE(uccl_engine_update_ipc_info(ipc, 0x1000, 0x1000, 16), 0);
  EXPECT_EQ(uccl_engine_send(nullptr, 1, nullptr, 0, nullptr), -1);
  EXPECT_EQ(uccl_engine_recv(nullptr, 1, nullptr, 0), -1);
  // A GPU named by PCI bus id is refused with a message, not misread.
  EXPECT_EQ(uccl_engine_connect(e, "127.0.0.1", "0000:18:00.0", 1, false), nullptr);
  uccl_engine_destroy(e);
}

}  // namespace
}  // namespace uccl_p2p_test
