// One network plugin per process, as Google's TCPX plugin demands (it refuses
// a second init(), error 3, even after dlclose). Run under the built-in
// plugin's strict TCPX emulation, which refuses the same way: C++ Endpoints
// and C API engines in one process share one loaded plugin, move checked data
// at the same time, are destroyed and recreated, and are created from several
// threads at once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "engine_pair.h"
#include "net/transport.h"
#include "tcpx/endpoint.h"
#include "uccl_engine.h"

namespace {

using capi_test::connect_pair;

constexpr size_t kBig = 8u << 20;  // several chunks over both channels
constexpr size_t kSmall = 1000;    // inline on the control connection

void fill(std::vector<uint8_t>& v, uint32_t seed) {
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i * 2654435761u + seed) >> 7);
}

class SharedPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("TCPX_LISTEN_ADDR", "127.0.0.1", 0);
    const char* strict = std::getenv("TCPX_P2P_TCP_STRICT");
    ASSERT_TRUE(strict != nullptr && std::string(strict) == "1")
        << "these tests are about the strict emulation (tests/strict_tcpx_env.cc sets it)";
  }
};

tcpx::Config loopback() {
  tcpx::Config c;
  c.listen_addr = "127.0.0.1";
  c.connect_timeout_ms = 5000;
  return c;
}

// Two Endpoints of this process, connected: a's conn to b and b's to a.
struct EndpointPair {
  std::unique_ptr<tcpx::Endpoint> a, b;
  tcpx::ConnId ab = 0, ba = 0;

  void open() {
    tcpx::Status s = tcpx::Endpoint::create(0, loopback(), &a);
    ASSERT_TRUE(s.ok()) << s.to_string();
    s = tcpx::Endpoint::create(0, loopback(), &b);
    ASSERT_TRUE(s.ok()) << s.to_string();
    s = a->connect("127.0.0.1", 0, b->local_info().port, &ab);
    ASSERT_TRUE(s.ok()) << s.to_string();
    s = b->accept(&ba, nullptr, 5000);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }
};

// Sends `size` checked bytes from `from` to `to` over the given conns and
// checks what arrived. Safe to run for several pairs on several threads.
void endpoint_transfer(tcpx::Endpoint& from, tcpx::ConnId out, tcpx::Endpoint& to, tcpx::ConnId in, size_t size,
                       uint32_t seed) {
  std::vector<uint8_t> src(size), dst(size + 1, 0);
  fill(src, seed);
  tcpx::MrId ms, md;
  ASSERT_TRUE(from.reg(src.data(), src.size(), &ms).ok());
  ASSERT_TRUE(to.reg(dst.data(), dst.size(), &md).ok());
  tcpx::XferId sid;
  tcpx::Status s = from.send_async(out, ms, src.data(), size, &sid);
  ASSERT_TRUE(s.ok()) << s.to_string();
  size_t got = 0;
  s = to.recv(in, md, dst.data(), dst.size(), &got);
  ASSERT_TRUE(s.ok()) << s.to_string();
  s = from.wait(sid, 30000);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_EQ(got, size);
  EXPECT_EQ(std::memcmp(src.data(), dst.data(), size), 0) << "seed " << seed;
  EXPECT_TRUE(from.dereg(ms).ok());
  EXPECT_TRUE(to.dereg(md).ok());
}

// The same through the C API (uccl_engine_send / uccl_engine_recv).
void engine_transfer(uccl_engine_t* from, uccl_conn_t* out, uccl_engine_t* to, uccl_conn_t* in, size_t size,
                     uint32_t seed) {
  std::vector<uint8_t> src(size), dst(size, 0);
  fill(src, seed);
  uccl_mr_t* ms = uccl_engine_reg(from, reinterpret_cast<uintptr_t>(src.data()), src.size());
  uccl_mr_t* md = uccl_engine_reg(to, reinterpret_cast<uintptr_t>(dst.data()), dst.size());
  ASSERT_NE(ms, nullptr);
  ASSERT_NE(md, nullptr);
  uint64_t tid = 0;
  ASSERT_EQ(uccl_engine_send(out, ms, src.data(), size, &tid), 0);
  ASSERT_EQ(uccl_engine_recv(in, md, dst.data(), size), 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!uccl_engine_xfer_status(out, tid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(uccl_engine_xfer_result(out, tid, nullptr, 0), 0);
  EXPECT_EQ(src, dst) << "seed " << seed;
  uccl_engine_mr_destroy(ms);
  uccl_engine_mr_destroy(md);
}

struct EnginePair {
  uccl_engine_t* a = nullptr;
  uccl_engine_t* b = nullptr;
  uccl_conn_t* ab = nullptr;
  uccl_conn_t* ba = nullptr;

  void open() {
    a = uccl_engine_create(0, 4, false);
    b = uccl_engine_create(0, 4, false);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    std::tie(ab, ba) = connect_pair(a, b);
    ASSERT_NE(ab, nullptr);
    ASSERT_NE(ba, nullptr);
  }
  void close() {
    if (ab) uccl_engine_conn_destroy(ab);
    if (ba) uccl_engine_conn_destroy(ba);
    if (a) uccl_engine_destroy(a);
    if (b) uccl_engine_destroy(b);
    *this = EnginePair{};
  }
};

TEST_F(SharedPlugin, LoadedOnceAndTheEmulationRefusesASecondInit) {
  std::shared_ptr<tcpx::net::Transport> t1, t2;
  ASSERT_TRUE(tcpx::net::Transport::load("", &t1).ok());
  ASSERT_TRUE(tcpx::net::Transport::load(tcpx::net::Transport::builtin_plugin_path(), &t2).ok());
  EXPECT_EQ(t1.get(), t2.get()) << "the same library must come back as the same Transport";
  // What the registry protects against: the plugin itself says no.
  EXPECT_EQ(t1->v().init(nullptr), ncclInternalError);
  // And it still works after the refused call.
  int ndev = 0;
  EXPECT_TRUE(t1->devices(&ndev).ok());
  EXPECT_GT(ndev, 0);
}

TEST_F(SharedPlugin, TwoEndpointsAndTwoEnginesMoveCheckedDataAtTheSameTime) {
  EndpointPair eps;
  ASSERT_NO_FATAL_FAILURE(eps.open());
  EnginePair engines;
  ASSERT_NO_FATAL_FAILURE(engines.open());
  // Four streams at once, both directions on both kinds of object.
  std::vector<std::thread> streams;
  streams.emplace_back([&] { endpoint_transfer(*eps.a, eps.ab, *eps.b, eps.ba, kBig, 1); });
  streams.emplace_back([&] { endpoint_transfer(*eps.b, eps.ba, *eps.a, eps.ab, kBig + 3, 2); });
  streams.emplace_back([&] { engine_transfer(engines.a, engines.ab, engines.b, engines.ba, kBig, 3); });
  streams.emplace_back([&] { engine_transfer(engines.b, engines.ba, engines.a, engines.ab, kBig + 5, 4); });
  for (auto& t : streams) t.join();
  engines.close();
}

TEST_F(SharedPlugin, DestroyAndRecreateTenTimes) {
  for (uint32_t round = 0; round < 10; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    EndpointPair eps;
    ASSERT_NO_FATAL_FAILURE(eps.open());
    ASSERT_NO_FATAL_FAILURE(endpoint_transfer(*eps.a, eps.ab, *eps.b, eps.ba, kBig, round));
    ASSERT_NO_FATAL_FAILURE(endpoint_transfer(*eps.b, eps.ba, *eps.a, eps.ab, kSmall, round + 100));
    EnginePair engines;
    ASSERT_NO_FATAL_FAILURE(engines.open());
    ASSERT_NO_FATAL_FAILURE(engine_transfer(engines.a, engines.ab, engines.b, engines.ba, kBig, round + 200));
    ASSERT_NO_FATAL_FAILURE(engine_transfer(engines.b, engines.ba, engines.a, engines.ab, kSmall, round + 300));
    engines.close();
    // eps goes out of scope: both Endpoints destroyed before the next round.
  }
}

TEST_F(SharedPlugin, FourThreadsCreateEndpointsAndFourCreateEnginesConcurrently) {
  constexpr int kEach = 4;
  std::unique_ptr<tcpx::Endpoint> eps[kEach];
  tcpx::Status statuses[kEach];
  uccl_engine_t* engines[kEach] = {};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kEach; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      statuses[i] = tcpx::Endpoint::create(0, loopback(), &eps[i]);
    });
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      engines[i] = uccl_engine_create(0, 4, false);
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  for (int i = 0; i < kEach; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].to_string();
    ASSERT_NE(engines[i], nullptr) << i;
  }
  // Every one of them works: pairs (0,1) and (2,3) of each kind move data.
  for (int i = 0; i < kEach; i += 2) {
    tcpx::ConnId out, in;
    ASSERT_TRUE(eps[i]->connect("127.0.0.1", 0, eps[i + 1]->local_info().port, &out).ok());
    ASSERT_TRUE(eps[i + 1]->accept(&in, nullptr, 5000).ok());
    endpoint_transfer(*eps[i], out, *eps[i + 1], in, kBig, 40 + i);
    auto [c, a] = connect_pair(engines[i], engines[i + 1]);
    ASSERT_NE(c, nullptr);
    ASSERT_NE(a, nullptr);
    engine_transfer(engines[i], c, engines[i + 1], a, kBig, 50 + i);
    uccl_engine_conn_destroy(c);
    uccl_engine_conn_destroy(a);
  }
  for (auto* e : engines) uccl_engine_destroy(e);
}

}  // namespace
