// Engine and connection lifecycle rules NIXL relies on: host-only create,
// several engines per process on their own ports, metadata format, accept
// parking after destroy, prompt conn_destroy, process-wide notification drain.
// Engines talk to each other inside this process over loopback.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine_pair.h"
#include "uccl_engine.h"

namespace {

using Clock = std::chrono::steady_clock;

class Lifecycle : public ::testing::Test {
 protected:
  void SetUp() override { setenv("TCPX_LISTEN_ADDR", "127.0.0.1", 0); }
};

using capi_test::connect_pair;
using capi_test::metadata;

TEST_F(Lifecycle, HostOnlyCreateAndMetadataFormat) {
  uccl_engine_t* e = uccl_engine_create(0, 4, false);
  ASSERT_NE(e, nullptr);
  std::string m = metadata(e);
  // "a.b.c.d:port?gpu", as NIXL splits it.
  unsigned a, b, c, d, port;
  int gpu;
  char tail;
  ASSERT_EQ(std::sscanf(m.c_str(), "%u.%u.%u.%u:%u?%d%c", &a, &b, &c, &d, &port, &gpu, &tail), 6)
      << m;
  EXPECT_EQ(m.rfind("127.0.0.1:", 0), 0u) << m;
  EXPECT_EQ(gpu, 0);
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
  uccl_engine_destroy(e);
}

TEST_F(Lifecycle, SeveralEnginesEachOnItsOwnPortAndRecreate) {
  uccl_engine_t* e[3];
  std::set<std::string> metas;
  for (auto& x : e) {
    x = uccl_engine_create(0, 4, false);
    ASSERT_NE(x, nullptr);
    metas.insert(metadata(x));
  }
  EXPECT_EQ(metas.size(), 3u);
  uccl_engine_destroy(e[1]);
  uccl_engine_t* again = uccl_engine_create(0, 4, false);
  ASSERT_NE(again, nullptr);
  // Calls on the destroyed handle fail instead of touching freed memory.
  char* m = nullptr;
  EXPECT_EQ(uccl_engine_get_metadata(e[1], &m), UCCL_E_CLOSED);
  EXPECT_EQ(uccl_engine_reg(e[1], 0x1000, 10), nullptr);
  // The new engine works with an old one.
  auto [c, a] = connect_pair(again, e[0]);
  ASSERT_NE(c, nullptr);
  ASSERT_NE(a, nullptr);
  uccl_engine_conn_destroy(c);
  uccl_engine_conn_destroy(a);
  uccl_engine_destroy(again);
  uccl_engine_destroy(e[0]);
  uccl_engine_destroy(e[2]);
}

TEST_F(Lifecycle, AcceptPendingOnDestroyedEngineStaysParked) {
  uccl_engine_t* e = uccl_engine_create(0, 4, false);
  ASSERT_NE(e, nullptr);
  auto returned = std::make_shared<std::atomic<bool>>(false);
  std::thread t([e, returned] {
    char ip[64];
    int gpu;
    uccl_engine_accept(e, ip, sizeof(ip), &gpu);
    returned->store(true);  // must never happen
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto t0 = Clock::now();
  uccl_engine_destroy(e);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_LT(ms, 2000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(returned->load());
  t.detach();  // parked for good, like NIXL's detached listener thread
  // An accept started after destroy parks too.
  std::thread late([e, returned] {
    uccl_engine_accept(e, nullptr, 0, nullptr);
    returned->store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(returned->load());
  late.detach();
  uccl_engine_t* fresh = uccl_engine_create(0, 4, false);
  EXPECT_NE(fresh, nullptr);
  uccl_engine_destroy(fresh);
}

TEST_F(Lifecycle, NotificationsFromEveryEngineExactlyOnce) {
  uccl_engine_t* a = uccl_engine_create(0, 4, false);
  uccl_engine_t* b = uccl_engine_create(0, 4, false);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto [ab, ba] = connect_pair(a, b);
  ASSERT_NE(ab, nullptr);
  ASSERT_NE(ba, nullptr);
  notify_msg_t n1 = {}, n2 = {};
  std::strcpy(n1.name, "alice");
  std::strcpy(n1.msg, "to-bob");
  std::strcpy(n2.name, "bob");
  std::memset(n2.msg, 'x', sizeof(n2.msg));  // not NUL-terminated: truncated to 63
  ASSERT_EQ(uccl_engine_send_notif(ab, &n1), 0);
  ASSERT_EQ(uccl_engine_send_notif(ba, &n2), 0);
  std::vector<notify_msg_t> got;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (got.size() < 2 && Clock::now() < deadline) {
    auto more = uccl_engine_get_notifs();
    got.insert(got.end(), more.begin(), more.end());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(got.size(), 2u);
  std::set<std::string> seen;
  for (auto& n : got) seen.insert(std::string(n.name) + "/" + n.msg);
  EXPECT_EQ(seen.count("alice/to-bob"), 1u);
  EXPECT_EQ(seen.count("bob/" + std::string(63, 'x')), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(uccl_engine_get_notifs().empty()) << "a notification nobody sent";
  // The per-engine drain sees only its own engine.
  ASSERT_EQ(uccl_engine_send_notif(ab, &n1), 0);
  deadline = Clock::now() + std::chrono::seconds(10);
  std::vector<notify_msg_t> only_b;
  while (only_b.empty() && Clock::now() < deadline) {
    EXPECT_TRUE(uccl_engine_get_notifs(a).empty());
    only_b = uccl_engine_get_notifs(b);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(only_b.size(), 1u);
  EXPECT_STREQ(only_b[0].msg, "to-bob");
  uccl_engine_conn_destroy(ab);
  uccl_engine_conn_destroy(ba);
  uccl_engine_destroy(a);
  uccl_engine_destroy(b);
}

TEST_F(Lifecycle, TwoSidedSendRecvAndUnknownIds) {
  uccl_engine_t* a = uccl_engine_create(0, 4, false);
  uccl_engine_t* b = uccl_engine_create(0, 4, false);
  auto [ab, ba] = connect_pair(a, b);
  ASSERT_NE(ab, nullptr);
  std::vector<uint8_t> src(1 << 20), dst(1 << 20, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 31 + 7);
  uccl_mr_t* ms = uccl_engine_reg(a, reinterpret_cast<uintptr_t>(src.data()), src.size());
  uccl_mr_t* md = uccl_engine_reg(b, reinterpret_cast<uintptr_t>(dst.data()), dst.size());
  ASSERT_NE(ms, nullptr);
  ASSERT_NE(md, nullptr);
  uint64_t tid;
  ASSERT_EQ(uccl_engine_send(ab, ms, src.data(), src.size(), &tid), 0);
  ASSERT_EQ(uccl_engine_recv(ba, md, dst.data(), dst.size()), 0);
  EXPECT_EQ(src, dst);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!uccl_engine_xfer_status(ab, tid) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(uccl_engine_xfer_status(ab, tid), 1);  // still 1 on a re-poll
  EXPECT_EQ(uccl_engine_xfer_result(ab, tid, nullptr, 0), 0);
  EXPECT_EQ(uccl_engine_xfer_status(ab, 987654), 0);
  EXPECT_EQ(uccl_engine_xfer_result(ab, 987654, nullptr, 0), UCCL_E_NOT_FOUND);
  // Local argument errors come back as codes.
  EXPECT_EQ(uccl_engine_send(ab, ms, src.data() + 10, src.size(), &tid), UCCL_E_INVALID);
  EXPECT_EQ(uccl_engine_send(ab, md, dst.data(), 10, &tid), UCCL_E_INVALID);  // other engine's MR
  EXPECT_EQ(uccl_engine_start_listener(ab), UCCL_E_BUSY);
  uccl_engine_mr_destroy(ms);
  uccl_engine_mr_destroy(md);
  uccl_engine_conn_destroy(ab);
  uccl_engine_conn_destroy(ba);
  uccl_engine_destroy(a);
  uccl_engine_destroy(b);
}

// get_fifo_item drives the engine on the caller's thread until the answer
// comes, for up to TCPX_SPIN_US: the first call after send_tx_md_vector
// returns the item (here with a budget far above any round trip), and the
// item reads the peer's bytes. With a budget of 0 it never spins, and
// polling it still gets the answer.
TEST_F(Lifecycle, GetFifoItemWaitsForAnAnswerWithinTheSpinBudget) {
  for (const char* spin : {"1000000", "0"}) {
    SCOPED_TRACE(std::string("TCPX_SPIN_US=") + spin);
    setenv("TCPX_SPIN_US", spin, 1);
    uccl_engine_t* a = uccl_engine_create(0, 4, false);
    uccl_engine_t* b = uccl_engine_create(0, 4, false);
    unsetenv("TCPX_SPIN_US");
    auto [ab, ba] = connect_pair(a, b);
    ASSERT_NE(ab, nullptr);
    ASSERT_NE(ba, nullptr);
    std::vector<uint8_t> src(4096), dst(4096, 0);
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 13 + 5);
    uccl_mr_t* mb = uccl_engine_reg(b, reinterpret_cast<uintptr_t>(src.data()), src.size());
    uccl_mr_t* ma = uccl_engine_reg(a, reinterpret_cast<uintptr_t>(dst.data()), dst.size());
    ASSERT_NE(mb, nullptr);
    ASSERT_NE(ma, nullptr);
    md_t md;
    std::memset(&md, 0, sizeof(md));
    md.op = UCCL_READ;
    md.data.tx_data.data_ptr = reinterpret_cast<uintptr_t>(src.data());
    md.data.tx_data.data_size = src.size();
    ASSERT_EQ(uccl_engine_send_tx_md_vector(ab, &md, 1), 0);
    char item[FIFO_ITEM_SIZE];
    int rc = uccl_engine_get_fifo_item(ab, 0, item);
    if (std::string(spin) != "0") {
      EXPECT_EQ(rc, 0) << "the first call waits for the answer";
    }
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (rc == UCCL_IN_PROGRESS && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      rc = uccl_engine_get_fifo_item(ab, 0, item);
    }
    ASSERT_EQ(rc, 0);
    uint64_t tid = 0;
    ASSERT_EQ(uccl_engine_read(ab, ma, dst.data(), dst.size(), item, &tid), 0);
    while (uccl_engine_xfer_status(ab, tid) == 0 && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(uccl_engine_xfer_result(ab, tid, nullptr, 0), 0);
    EXPECT_EQ(src, dst);
    uccl_engine_mr_destroy(ma);
    uccl_engine_mr_destroy(mb);
    uccl_engine_conn_destroy(ab);
    uccl_engine_conn_destroy(ba);
    uccl_engine_destroy(a);
    uccl_engine_destroy(b);
  }
}

// uccl_engine_mr_destroy waits for the transfers using the region and is
// woken by the last one's end: prompt when none is left, and returning right
// after an in-flight one ends.
TEST_F(Lifecycle, MrDestroyWaitsForTheTransferAndReturnsPromptly) {
  using ms = std::chrono::milliseconds;
  uccl_engine_t* a = uccl_engine_create(0, 4, false);
  uccl_engine_t* b = uccl_engine_create(0, 4, false);
  auto [ab, ba] = connect_pair(a, b);
  ASSERT_NE(ab, nullptr);
  std::vector<uint8_t> src(1 << 20, 0x3c), dst(1 << 20, 0);
  uccl_mr_t* md = uccl_engine_reg(b, reinterpret_cast<uintptr_t>(dst.data()), dst.size());
  ASSERT_NE(md, nullptr);

  // Right after a transfer completed.
  uccl_mr_t* ms1 = uccl_engine_reg(a, reinterpret_cast<uintptr_t>(src.data()), src.size());
  ASSERT_NE(ms1, nullptr);
  uint64_t tid;
  ASSERT_EQ(uccl_engine_send(ab, ms1, src.data(), src.size(), &tid), 0);
  ASSERT_EQ(uccl_engine_recv(ba, md, dst.data(), dst.size()), 0);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!uccl_engine_xfer_status(ab, tid) && Clock::now() < deadline) std::this_thread::sleep_for(ms(1));
  ASSERT_EQ(uccl_engine_xfer_result(ab, tid, nullptr, 0), 0);
  auto t0 = Clock::now();
  uccl_engine_mr_destroy(ms1);
  long took = std::chrono::duration_cast<ms>(Clock::now() - t0).count();
  EXPECT_LT(took, 50);

  // While a send is in flight (nobody receives yet): destroy waits for it.
  uccl_mr_t* ms2 = uccl_engine_reg(a, reinterpret_cast<uintptr_t>(src.data()), src.size());
  ASSERT_NE(ms2, nullptr);
  ASSERT_EQ(uccl_engine_send(ab, ms2, src.data(), src.size(), &tid), 0);
  std::atomic<bool> destroyed{false};
  Clock::time_point destroyed_at;
  std::thread destroyer([&] {
    uccl_engine_mr_destroy(ms2);
    destroyed_at = Clock::now();
    destroyed = true;
  });
  std::this_thread::sleep_for(ms(200));
  EXPECT_FALSE(destroyed.load());  // still waiting for the send
  std::fill(dst.begin(), dst.end(), uint8_t{0});
  ASSERT_EQ(uccl_engine_recv(ba, md, dst.data(), dst.size()), 0);
  auto received_at = Clock::now();
  destroyer.join();
  EXPECT_EQ(dst, src);
  long after = std::chrono::duration_cast<ms>(destroyed_at - received_at).count();
  EXPECT_LT(after, 50);
  std::printf("mr_destroy: %ld ms after a completed transfer, %ld ms after the in-flight one was received\n", took,
              after);
  uccl_engine_mr_destroy(md);
  uccl_engine_conn_destroy(ab);
  uccl_engine_conn_destroy(ba);
  uccl_engine_destroy(a);
  uccl_engine_destroy(b);
}

TEST_F(Lifecycle, ConnDestroyIsPromptWhenPeerIsGone) {
  uccl_engine_t* a = uccl_engine_create(0, 4, false);
  uccl_engine_t* b = uccl_engine_create(0, 4, false);
  auto [ab, ba] = connect_pair(a, b);
  ASSERT_NE(ab, nullptr);
  uccl_engine_destroy(b);  // the peer disappears (its conn handle stays valid)
  auto t0 = Clock::now();
  uccl_engine_conn_destroy(ab);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(),
            2000);
  uccl_engine_conn_destroy(ba);  // after its engine: still safe
  uccl_engine_destroy(a);
}

TEST_F(Lifecycle, NullArgumentsAreErrors) {
  EXPECT_EQ(uccl_engine_get_metadata(nullptr, nullptr), UCCL_E_INVALID);
  EXPECT_EQ(uccl_engine_connect(nullptr, "127.0.0.1", 0, 1), nullptr);
  EXPECT_EQ(uccl_engine_start_listener(nullptr), UCCL_E_INVALID);
  EXPECT_EQ(uccl_engine_send_tx_md_vector(nullptr, nullptr, 1), UCCL_E_INVALID);
  EXPECT_EQ(uccl_engine_get_fifo_item(nullptr, 0, nullptr), UCCL_E_INVALID);
  EXPECT_EQ(uccl_engine_xfer_status(nullptr, 1), 0);
  EXPECT_EQ(uccl_engine_send_notif(nullptr, nullptr), UCCL_E_INVALID);
  size_t n = 7;
  EXPECT_EQ(uccl_engine_get_notifs(nullptr, 0, &n), 0);
  EXPECT_EQ(n, 0u);
  uccl_engine_destroy(nullptr);
  uccl_engine_conn_destroy(nullptr);
  uccl_engine_mr_destroy(nullptr);
}

}  // namespace
