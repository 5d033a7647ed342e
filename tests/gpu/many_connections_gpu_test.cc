// Many connections receiving into GPU memory at once, in one process: the
// CUDA unpacker then holds jobs of every comm, more than its ring of 256
// records. A receive whose unpack job the unpacker refused (BUSY: its ring
// full of running jobs, or of finished ones their owners have not collected
// yet) used to fail its whole connection; it now starts the job on a later
// pass. 4 KiB chunks make a job per 4 KiB, so the ring fills within a
// fraction of a millisecond; in the emulated run each job also stays
// "running" for 2 ms (TCPX_GPU_TEST_EMULATED_US), as a busy GPU's would.
// Every byte is checked, with guards.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "device_memory.h"
#include "support/pattern.h"
#include "support/status_assert.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::gputest;

namespace {

constexpr int kConnections = 12;
constexpr int kPerConnection = 4;
constexpr size_t kSize = (256u << 10) + 7;  // over TCPX_EAGER_BYTES: through the plugin and the unpacker
constexpr size_t kSlot = 260u << 10;        // room for a transfer and its guards
constexpr size_t kGuard = 64;
constexpr uint8_t kGuardByte = 0xEE;
constexpr int kBoundMs = 60000;

uint64_t seed_of(int conn, int i) { return 1000 + 10 * conn + i; }

TEST(ManyConnectionsGpu, EveryConnectionReceivesIntoGpuMemoryAtOnceByteExact) {
  // Before the stand-in library loads (gpu_unavailable_reason loads it).
  if (emulated() && !getenv("TCPX_GPU_TEST_EMULATED_US")) setenv("TCPX_GPU_TEST_EMULATED_US", "2000", 1);
  std::string why = gpu_unavailable_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  test::set_test_env(false);
  Config cfg = test::loopback_config();
  cfg.chunk_bytes = 4096;  // an unpack job per 4 KiB
  std::unique_ptr<Endpoint> rx, tx;
  ASSERT_OK(test::make_endpoint(&rx, 0, cfg));
  ASSERT_OK(test::make_endpoint(&tx, 0, cfg));

  const size_t total = size_t{kConnections} * kPerConnection * kSlot;
  Region dst;
  ASSERT_TRUE(dst.allocate(Kind::kGpu, total, &why)) << why;
  ASSERT_EQ(dst.set(kGuardByte), "");
  std::vector<uint8_t> src(total);
  MrId rx_mr = 0, tx_mr = 0;
  ASSERT_OK(rx->reg(dst.data(), total, &rx_mr));
  ASSERT_OK(tx->reg(src.data(), total, &tx_mr));

  std::vector<ConnId> rx_conns(kConnections), tx_conns(kConnections);
  for (int c = 0; c < kConnections; ++c) {
    ASSERT_OK(tx->connect(rx->local_info(), &tx_conns[c]));
    ASSERT_OK(rx->accept(&rx_conns[c], nullptr, kBoundMs));
  }
  // A connection's transfers match in order, so receive c's i-th at the
  // slot the sender's i-th on the connection accepted c-th comes from
  // (accept order is connect order here: one connector, one at a time).
  auto slot = [](int c, int i) { return (size_t(c) * kPerConnection + i) * kSlot + kGuard; };
  std::vector<XferId> recvs, sends;
  for (int c = 0; c < kConnections; ++c)
    for (int i = 0; i < kPerConnection; ++i) {
      XferId id = 0;
      ASSERT_OK(rx->recv_async(rx_conns[c], rx_mr, dst.data() + slot(c, i), kSize, &id));
      recvs.push_back(id);
    }
  for (int c = 0; c < kConnections; ++c)
    for (int i = 0; i < kPerConnection; ++i) {
      test::fill_pattern(src.data() + slot(c, i), kSize, seed_of(c, i));
      XferId id = 0;
      ASSERT_OK(tx->send_async(tx_conns[c], tx_mr, src.data() + slot(c, i), kSize, &id));
      sends.push_back(id);
    }
  for (XferId id : sends) EXPECT_OK(tx->wait(id, kBoundMs));
  for (XferId id : recvs) EXPECT_OK(rx->wait(id, kBoundMs));
  for (int c = 0; c < kConnections; ++c)
    for (int i = 0; i < kPerConnection; ++i)
      EXPECT_EQ(dst.check(slot(c, i), kSize, seed_of(c, i), kGuard, kGuardByte), "")
          << "connection " << c << ", transfer " << i;
  for (int c = 0; c < kConnections; ++c) {
    EXPECT_OK(rx->close_connection(rx_conns[c]));
    EXPECT_OK(tx->close_connection(tx_conns[c]));
  }
  EXPECT_OK(rx->dereg(rx_mr));
  EXPECT_OK(tx->dereg(tx_mr));
}

}  // namespace
