// Two-process Endpoint transfers with GPU memory on one or both sides, over
// the built-in plugin on loopback: CUDA receives land in the plugin's pinned
// bounce buffer and the engine unpacks them with the CUDA unpacker; CUDA sends
// are staged through pinned memory by the plugin; small host sources travel
// inline only to host memory (a GPU destination gets them through the plugin
// too, never by an upload on the progress thread). For each mode (direct, TCPX_P2P_TCP_BOUNCE_HOST=1,
// and inline transfers off) and each memory pairing (this process / the peer:
// gpu/gpu, host/gpu, gpu/host): two-sided echo (this process -> peer -> this
// process), one-sided read into this process and write into the peer, at
// 1 B, 4095, 4096, 1 MiB + 7, 16 MiB and 64 MiB, at offsets inside the
// registrations, checked byte for byte (device memory is copied back) with
// guard bytes on both sides. Skipped, with the reason, without a GPU.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "../unpack/asan_cuda_options.h"
#include "cuda/cuda_ops.h"
#include "device_memory.h"
#include "support/child_process.h"
#include "support/status_assert.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::gputest;

namespace {

constexpr uint8_t kGuard = 0xEE;
constexpr size_t kGuardBytes = 64;
const std::vector<size_t> kSizes = {1, 4095, 4096, (1u << 20) + 7, 16u << 20, 64u << 20};
// Offsets inside the registrations, none page-aligned but the peer's, so the
// unpack sees both shapes of destination.
constexpr size_t kSendOff = 777, kRecvOff = 3, kPeerOff = 4096 + 13, kPeerPageOff = 8192;
constexpr size_t kRegion = (64u << 20) + 3 * 4096;
// The GPU peer may take a while (CUDA context, 64 MiB regions): every line
// it owes us gets this long.
constexpr int kPeerWaitMs = 60000;

struct Mode {
  const char* name;
  bool bounce_host;   // TCPX_P2P_TCP_BOUNCE_HOST=1
  bool inline_off;    // TCPX_EAGER_BYTES=0: every byte through the plugin
};
struct Pair {
  Kind self;
  Kind peer;
};
using Param = std::tuple<Mode, Pair>;

// Readable parameters in test listings (ctest names carry them).
void PrintTo(const Mode& m, std::ostream* os) { *os << m.name; }
void PrintTo(const Pair& p, std::ostream* os) { *os << kind_name(p.self) << "->" << kind_name(p.peer); }

// In the emulated run, every receive into GPU memory must have gone through
// the CUDA unpacker (not the CPU one, not in place), small ones from host
// sources included: inline bytes for GPU memory become the unpacker's copy
// jobs (or, when none can start, are asked for through the plugin), never a
// copy on the progress thread. A real run proves the same by the data:
// nothing else can write device memory there.
void expect_cuda_unpack_since(int64_t before, size_t size, const Mode& mode, const Pair& pair) {
  (void)size;
  (void)mode;
  int64_t now = emulated_unpack_jobs();
  if (now < 0 || pair.self != Kind::kGpu) return;
  EXPECT_GT(now, before) << "no CUDA unpack job for a GPU destination";
}

std::string param_name(const ::testing::TestParamInfo<Param>& i) {
  const auto& [m, p] = i.param;
  return std::string(m.name) + "_" + kind_name(p.self) + "_" + kind_name(p.peer);
}

class EngineGpu : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    // The skip comes first, before any endpoint or CUDA call.
    if (std::string why = gpu_unavailable_reason(); !why.empty()) {
      GTEST_SKIP() << "needs a GPU: " << why;
    }
    const auto& [mode, pair] = GetParam();
    pair_ = pair;
    // Children inherit these: both processes run the same mode.
    test::set_test_env(mode.bounce_host);
    if (mode.inline_off) setenv("TCPX_EAGER_BYTES", "0", 1);
    else unsetenv("TCPX_EAGER_BYTES");
    Status s = test::make_endpoint(&ep_);
    ASSERT_TRUE(s.ok()) << s.to_string();
    std::string why;
    ASSERT_TRUE(src_.allocate(pair.self, kRegion, &why)) << why;
    ASSERT_TRUE(dst_.allocate(pair.self, kRegion, &why)) << why;
    ASSERT_TRUE(ep_->reg(src_.data(), src_.size(), &src_mr_).ok());
    ASSERT_TRUE(ep_->reg(dst_.data(), dst_.size(), &dst_mr_).ok());
    ASSERT_OK(peer_.spawn({GPU_PEER_PATH, kind_name(pair.peer), std::to_string(kRegion)},
                          test::ChildOptions::line_protocol()));
    std::string port = peer_.expect("READY ", kPeerWaitMs);
    ASSERT_EQ(port.find('<'), std::string::npos) << port;
    s = ep_->connect("127.0.0.1", 0, static_cast<uint16_t>(std::stoi(port)), &c_);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_EQ(peer_.expect("ACCEPTED", kPeerWaitMs), "");
    // The path line says whether the CUDA unpacker is in place; failures
    // below are easier to read with it.
    RecordProperty("path", ep_->describe_path());
  }
  void TearDown() override { (void)peer_.write_line("quit"); }  // the peer may be gone already

  FifoItem advertise(size_t off, size_t len, uint64_t seed) {
    EXPECT_OK(peer_.write_line("adv " + std::to_string(off) + " " + std::to_string(len) + " " + std::to_string(seed)));
    std::string hex = peer_.expect("ITEM ", kPeerWaitMs);
    FifoItem item{};
    EXPECT_TRUE(test::from_hex(hex, item.bytes, sizeof item.bytes)) << hex;
    return item;
  }

  Pair pair_{};
  // Declared before the endpoint, so the endpoint (and its registrations) is
  // gone before the memory is freed.
  Region src_, dst_;
  std::unique_ptr<Endpoint> ep_;
  MrId src_mr_ = 0, dst_mr_ = 0;
  test::ChildProcess peer_;  // engine_gpu_peer, over its stdin/stdout
  ConnId c_ = 0;
};

// This process -> peer (checked there) -> back into this process (checked
// here): both directions of the pairing in one round trip.
TEST_P(EngineGpu, TwoSidedEchoByteExact) {
  for (size_t size : kSizes) {
    SCOPED_TRACE("size " + std::to_string(size));
    uint64_t seed = 100 + size;
    ASSERT_EQ(src_.fill_pattern(kSendOff, size, seed), "");
    ASSERT_EQ(dst_.set(kGuard), "");
    EXPECT_OK(peer_.write_line("echo " + std::to_string(kPeerOff) + " " + std::to_string(size) + " " + std::to_string(seed)));
    XferId send_id = 0, recv_id = 0;
    ASSERT_TRUE(ep_->send_async(c_, src_mr_, src_.data() + kSendOff, size, &send_id).ok());
    int64_t jobs = emulated_unpack_jobs();
    ASSERT_TRUE(ep_->recv_async(c_, dst_mr_, dst_.data() + kRecvOff, size, &recv_id).ok());
    EXPECT_EQ(peer_.expect("ECHO ", kPeerWaitMs), "ok");
    Status s = ep_->wait(send_id, 60000);
    ASSERT_TRUE(s.ok()) << "send: " << s.to_string();
    s = ep_->wait(recv_id, 60000);
    ASSERT_TRUE(s.ok()) << "receive of the echo: " << s.to_string();
    EXPECT_EQ(dst_.check(kRecvOff, size, seed, kGuardBytes, kGuard), "");
    expect_cuda_unpack_since(jobs, size, std::get<0>(GetParam()), pair_);
  }
}

// The peer's region -> this process's memory.
TEST_P(EngineGpu, OneSidedReadByteExact) {
  for (size_t size : kSizes) {
    SCOPED_TRACE("size " + std::to_string(size));
    uint64_t seed = 200 + size;
    FifoItem item = advertise(kPeerOff, size, seed);
    ASSERT_EQ(dst_.set(kGuard), "");
    int64_t jobs = emulated_unpack_jobs();
    Status s = ep_->read(c_, dst_mr_, dst_.data() + kRecvOff, size, item);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(dst_.check(kRecvOff, size, seed, kGuardBytes, kGuard), "");
    expect_cuda_unpack_since(jobs, size, std::get<0>(GetParam()), pair_);
  }
}

// This process's memory -> the peer's region, checked by the peer after the
// notification that follows the write.
TEST_P(EngineGpu, OneSidedWriteByteExact) {
  for (size_t size : kSizes) {
    SCOPED_TRACE("size " + std::to_string(size));
    uint64_t seed = 300 + size;
    FifoItem item = advertise(kPeerPageOff, size, 0);
    ASSERT_EQ(src_.fill_pattern(kSendOff, size, seed), "");
    Status s = ep_->write(c_, src_mr_, src_.data() + kSendOff, size, item);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_TRUE(ep_->send_notification(c_, "written", std::to_string(size)).ok());
    EXPECT_OK(peer_.write_line("check " + std::to_string(kPeerPageOff) + " " + std::to_string(size) + " " +
                               std::to_string(seed)));
    EXPECT_EQ(peer_.expect("CHECK ", kPeerWaitMs), "ok");
  }
}

// The burst tests run host->gpu and gpu->host (inline bytes leave host
// memory only, so each test has one pairing whose small pieces travel
// inline into GPU memory), with and without inline bytes. Each run costs
// about 2 s of setup; gpu->gpu takes no path these do not.
class EngineGpuBurst : public EngineGpu {};

// Many small sends at once into this process's memory, all receives posted
// first: inline bytes for GPU memory are uploaded (copy jobs, a staging slot
// each) and, past the staging or with the unpacker busy, asked for through
// the plugin instead. Matching is in order either way, so the pieces land
// as one contiguous pattern.
TEST_P(EngineGpuBurst, BurstOfSmallSendsLandsInOrder) {
  constexpr size_t kCount = 200, kSize = 1000;
  const uint64_t seed = 400;
  ASSERT_EQ(dst_.set(kGuard), "");
  std::vector<XferId> ids(kCount);
  for (size_t i = 0; i < kCount; ++i)
    ASSERT_TRUE(ep_->recv_async(c_, dst_mr_, dst_.data() + kRecvOff + i * kSize, kSize, &ids[i]).ok());
  EXPECT_OK(peer_.write_line("burst " + std::to_string(kCount) + " " + std::to_string(kSize) + " " +
                             std::to_string(seed)));
  for (size_t i = 0; i < kCount; ++i) {
    Status s = ep_->wait(ids[i], 60000);
    ASSERT_TRUE(s.ok()) << "receive " << i << ": " << s.to_string();
  }
  EXPECT_EQ(peer_.expect("BURST ", kPeerWaitMs), "ok");
  EXPECT_EQ(dst_.check(kRecvOff, kCount * kSize, seed, kGuardBytes, kGuard), "");
}

// Many small inline writes in one vector, then a notification: the peer
// reads its memory when the notification arrives, so every piece (uploaded
// into GPU memory or sent through the plugin) must be in place before it.
TEST_P(EngineGpuBurst, BurstOfSmallWritesIsInPlaceBeforeTheNotification) {
  constexpr size_t kCount = 200, kSize = 1000;
  const uint64_t seed = 500;
  EXPECT_OK(peer_.write_line("advn " + std::to_string(kPeerPageOff) + " " + std::to_string(kSize) + " " +
                             std::to_string(kCount)));
  std::vector<IoPiece> pieces(kCount);
  ASSERT_EQ(src_.fill_pattern(kSendOff, kCount * kSize, seed), "");
  for (size_t i = 0; i < kCount; ++i) {
    std::string hex = peer_.expect("ITEM ", kPeerWaitMs);
    ASSERT_TRUE(test::from_hex(hex, pieces[i].remote.bytes, sizeof pieces[i].remote.bytes)) << hex;
    pieces[i].mr = src_mr_;
    pieces[i].data = src_.data() + kSendOff + i * kSize;
    pieces[i].size = kSize;
  }
  XferId id = 0;
  ASSERT_TRUE(ep_->writev_async(c_, pieces, &id).ok());
  Status s = ep_->wait(id, 60000);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_TRUE(ep_->send_notification(c_, "written", "burst").ok());
  EXPECT_OK(peer_.write_line("check " + std::to_string(kPeerPageOff) + " " + std::to_string(kCount * kSize) + " " +
                             std::to_string(seed)));
  EXPECT_EQ(peer_.expect("CHECK ", kPeerWaitMs), "ok");
}

// The engine must refuse a GPU index the host does not have (the handshake
// would otherwise advertise a GPU nobody can use).
TEST(EngineGpuIndex, CreateRejectsIndexPastDeviceCount) {
  if (std::string why = gpu_unavailable_reason(); !why.empty()) {
    GTEST_SKIP() << "needs a GPU: " << why;
  }
  int n = 0;
  ASSERT_EQ(tcpx::cuda::ops()->device_count(&n), 0);
  test::set_test_env(false);
  std::unique_ptr<Endpoint> ep;
  Status s = test::make_endpoint(&ep, n);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  s = test::make_endpoint(&ep, n - 1);
  EXPECT_TRUE(s.ok()) << s.to_string();
}

const Mode kModes[] = {{"direct", false, false}, {"bounce", true, false}, {"noinline", false, true}};
const Pair kPairs[] = {{Kind::kGpu, Kind::kGpu}, {Kind::kHost, Kind::kGpu}, {Kind::kGpu, Kind::kHost}};

INSTANTIATE_TEST_SUITE_P(Modes, EngineGpu, ::testing::Combine(::testing::ValuesIn(kModes), ::testing::ValuesIn(kPairs)),
                         param_name);
INSTANTIATE_TEST_SUITE_P(Burst, EngineGpuBurst,
                         ::testing::Combine(::testing::Values(kModes[0], kModes[2]), ::testing::Values(kPairs[1], kPairs[2])),
                         param_name);

}  // namespace
