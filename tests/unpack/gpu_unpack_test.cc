// The CUDA unpack kernel against the CPU reference: random fragment lists over
// every source/destination alignment 0..15 (of the offsets and of the base
// pointers), lengths 1 B..4 KiB, up to 2048 fragments, 16 slots submitted
// before any is queried, compared bit for bit, from a bounce buffer in device
// memory and from one in mapped host memory. Skipped, with the reason, on a
// host without a usable GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "asan_cuda_options.h"
#include "cuda/cuda_ops.h"
#include "fragment_layout.h"
#include "unpack/unpacker.h"

namespace tcpx::unpack {
namespace {

using testing::kSlotRegion;
using testing::SlotLayout;

constexpr int kSlots = NET_UNPACK_MAX_SLICES;
constexpr uint8_t kGuard = 0xEE;

#define ASSERT_CUDA(x) ASSERT_EQ((x), cudaSuccess) << #x << ": " << cudaGetErrorString(x)

// Polls query() until the job leaves IN_PROGRESS or 30 s pass.
Status wait(Unpacker& u, uint64_t ticket) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    Status s = u.query(ticket);
    if (!s.in_progress()) return s;
    if (std::chrono::steady_clock::now() > deadline) return TimedOut("unpack did not finish in 30 s");
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

class GpuUnpack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (tcpx::cuda::ops() == nullptr)
      GTEST_SKIP() << "no GPU unpack on this host: " << tcpx::cuda::unavailable_reason();
    Status s = make_cuda_unpacker(0, &u_);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_CUDA(cudaSetDevice(0));
    void* m = nullptr;
    ASSERT_CUDA(cudaHostAlloc(&m, sizeof(netUnpackMeta), cudaHostAllocMapped | cudaHostAllocPortable));
    meta_ = static_cast<netUnpackMeta*>(m);
    std::memset(meta_, 0, sizeof(netUnpackMeta));
  }
  void TearDown() override {
    u_.reset();
    if (meta_ != nullptr) cudaFreeHost(meta_);
    for (void* p : device_allocs_) cudaFree(p);
    for (void* p : host_allocs_) cudaFreeHost(p);
  }
  void check_against_reference(bool host_bounce);
  uint8_t* device_alloc(size_t n) {
    void* p = nullptr;
    if (cudaMalloc(&p, n) != cudaSuccess) return nullptr;
    device_allocs_.push_back(p);
    return static_cast<uint8_t*>(p);
  }

  // Pinned host memory mapped into the device (unified addressing: the same
  // pointer on both sides).
  uint8_t* host_alloc(size_t n) {
    void* p = nullptr;
    if (cudaHostAlloc(&p, n, cudaHostAllocMapped | cudaHostAllocPortable) != cudaSuccess) return nullptr;
    host_allocs_.push_back(p);
    return static_cast<uint8_t*>(p);
  }

  std::unique_ptr<Unpacker> u_;
  netUnpackMeta* meta_ = nullptr;
  std::vector<void*> device_allocs_;
  std::vector<void*> host_allocs_;
};

// Every slot's layout unpacked by the kernel, compared with the CPU
// reference. host_bounce: the bounce buffer is mapped host memory (the
// built-in plugin's), else device memory (TCPX's).
void GpuUnpack::check_against_reference(bool host_bounce) {
  std::mt19937_64 rng(424242);
  // Base pointers are offset by 0..15 bytes too, so the kernel's width choice
  // is tested on addresses, not just on offsets.
  const size_t bounce_bytes = kSlotRegion * kSlots + 16;
  uint8_t* bounce = host_bounce ? host_alloc(bounce_bytes) : device_alloc(bounce_bytes);
  ASSERT_NE(bounce, nullptr);
  std::vector<uint8_t> bounce_host(bounce_bytes);
  for (int round = 0; round < 4; ++round) {
    testing::fill_random(bounce_host, rng);
    ASSERT_CUDA(cudaMemcpy(bounce, bounce_host.data(), bounce_bytes, cudaMemcpyDefault));
    const size_t src_shift = round * 5 % 16;
    std::vector<SlotLayout> layouts;
    std::vector<std::vector<uint8_t>> want;
    std::vector<uint8_t*> dst_dev;
    std::vector<size_t> dst_shift;
    for (int s = 0; s < kSlots; ++s) {
      uint32_t count = (s == 0) ? NET_UNPACK_MAX_SLICE_PAGES : (s == 1) ? 0 : 1 + rng() % NET_UNPACK_MAX_SLICE_PAGES;
      layouts.push_back(testing::random_layout(rng, count, s * kSlotRegion));
      testing::install(meta_, s, layouts.back());
      const size_t bytes = layouts.back().dst_bytes + 64;  // guard band after the data
      dst_shift.push_back((s + round) % 16);
      uint8_t* d = device_alloc(bytes + 16);
      ASSERT_NE(d, nullptr);
      ASSERT_CUDA(cudaMemset(d, kGuard, bytes + 16));
      dst_dev.push_back(d);
      want.emplace_back(bytes, kGuard);
      testing::reference_unpack(layouts.back(), bounce_host.data() + src_shift, want.back().data());
    }
    // The memsets ran on the legacy stream; the unpacker's stream is
    // non-blocking and would not wait for them.
    ASSERT_CUDA(cudaDeviceSynchronize());
    std::vector<uint64_t> tickets;
    for (int s = 0; s < kSlots; ++s) {
      UnpackJob j;
      j.meta = meta_;
      j.slot = s;
      j.bounce_buf = bounce + src_shift;
      j.bounce_capacity = bounce_bytes - src_shift;
      j.dst = dst_dev[s] + dst_shift[s];
      j.dst_capacity = want[s].size();
      j.dst_is_device = true;
      uint64_t t = 0;
      Status st = u_->submit(j, &t);
      ASSERT_TRUE(st.ok()) << "slot " << s << ": " << st.to_string();
      tickets.push_back(t);
    }
    for (int s = 0; s < kSlots; ++s) {
      Status st = wait(*u_, tickets[s]);
      ASSERT_TRUE(st.ok()) << "slot " << s << ": " << st.to_string();
    }
    for (int s = 0; s < kSlots; ++s) {
      std::vector<uint8_t> got(want[s].size() + 16);
      ASSERT_CUDA(cudaMemcpy(got.data(), dst_dev[s], got.size(), cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < dst_shift[s]; ++i) ASSERT_EQ(got[i], kGuard) << "write before dst, slot " << s;
      ASSERT_EQ(0, std::memcmp(got.data() + dst_shift[s], want[s].data(), want[s].size()))
          << "round " << round << " slot " << s << " (" << meta_->cnt[s] << " fragments)";
    }
  }
}

TEST_F(GpuUnpack, KernelMatchesCpuReference) { check_against_reference(/*host_bounce=*/false); }

TEST_F(GpuUnpack, KernelMatchesCpuReferenceFromMappedHostMemory) { check_against_reference(/*host_bounce=*/true); }

TEST_F(GpuUnpack, BadMetadataFailsTheJobAndNotTheUnpacker) {
  uint8_t* bounce = device_alloc(2 * 4096);
  uint8_t* dst = device_alloc(4096);
  ASSERT_TRUE(bounce && dst);
  UnpackJob j;
  j.meta = meta_;
  j.slot = 7;
  j.bounce_buf = bounce;
  j.bounce_capacity = 2 * 4096;
  j.dst = dst;
  j.dst_capacity = 4096;
  j.dst_is_device = true;
  uint64_t t = 0;

  meta_->cnt[7] = NET_UNPACK_MAX_SLICE_PAGES + 1;
  EXPECT_EQ(u_->submit(j, &t).code(), StatusCode::kInvalidArgument);

  meta_->mem[7][0] = loadMeta{0, 4097, 0};
  meta_->cnt[7] = 1;
  ASSERT_TRUE(u_->submit(j, &t).ok());
  Status s = wait(*u_, t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("len > 4096"), std::string::npos) << s.message();

  meta_->mem[7][0] = loadMeta{0, 100, 4000};  // ends 4 bytes past dst
  ASSERT_TRUE(u_->submit(j, &t).ok());
  s = wait(*u_, t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("dst_capacity"), std::string::npos) << s.message();

  meta_->mem[7][0] = loadMeta{8000, 500, 0};  // reads past the bounce buffer
  ASSERT_TRUE(u_->submit(j, &t).ok());
  EXPECT_EQ(wait(*u_, t).code(), StatusCode::kInvalidArgument);

  // The unpacker keeps working after failed jobs.
  std::vector<uint8_t> src(4096);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i ^ 0x5a);
  ASSERT_CUDA(cudaMemcpy(bounce, src.data(), src.size(), cudaMemcpyHostToDevice));
  meta_->mem[7][0] = loadMeta{0, 4096, 0};
  ASSERT_TRUE(u_->submit(j, &t).ok());
  ASSERT_TRUE(wait(*u_, t).ok());
  std::vector<uint8_t> got(4096);
  ASSERT_CUDA(cudaMemcpy(got.data(), dst, got.size(), cudaMemcpyDeviceToHost));
  EXPECT_EQ(got, src);
  EXPECT_EQ(u_->query(t + 1).code(), StatusCode::kNotFound);
}

TEST_F(GpuUnpack, MetaInPageableMemoryIsRejected) {
  // The kernel can only read metadata the device can reach; pageable memory
  // would need an upload per chunk, which this design refuses.
  auto pageable = std::make_unique<netUnpackMeta>();
  pageable->cnt[0] = 1;
  pageable->mem[0][0] = loadMeta{0, 16, 0};
  uint8_t* bounce = device_alloc(4096);
  uint8_t* dst = device_alloc(4096);
  UnpackJob j;
  j.meta = pageable.get();
  j.bounce_buf = bounce;
  j.dst = dst;
  j.dst_capacity = 4096;
  j.dst_is_device = true;
  uint64_t t = 0;
  Status s = u_->submit(j, &t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("unpack metadata"), std::string::npos) << s.message();
}

// The engine submits from its progress thread and from application threads
// that drive progress, often threads that never made a CUDA call. There,
// with no context bound yet, CUDA reports mapped host memory without a device
// address; the unpacker must bind its device itself. The bounce buffer is
// host-mapped here, as the built-in plugin's is.
TEST_F(GpuUnpack, SubmitFromAThreadThatNeverUsedCudaUnpacksMappedHostMemory) {
  void* b = nullptr;
  ASSERT_CUDA(cudaHostAlloc(&b, 4096, cudaHostAllocMapped | cudaHostAllocPortable));
  std::unique_ptr<void, decltype(&cudaFreeHost)> bounce(b, &cudaFreeHost);
  auto* src = static_cast<uint8_t*>(b);
  for (size_t i = 0; i < 4096; ++i) src[i] = static_cast<uint8_t>(i * 7 + 3);
  uint8_t* dst = device_alloc(4096);
  ASSERT_NE(dst, nullptr);
  ASSERT_CUDA(cudaMemset(dst, kGuard, 4096));
  // The memset runs on the legacy stream, the kernel on the unpacker's
  // non-blocking one: nothing orders them but this.
  ASSERT_CUDA(cudaDeviceSynchronize());
  meta_->cnt[3] = 2;
  meta_->mem[3][0] = loadMeta{0, 1000, 3000};
  meta_->mem[3][1] = loadMeta{1000, 3000, 0};
  UnpackJob j;
  j.meta = meta_;
  j.slot = 3;
  j.bounce_buf = b;
  j.bounce_capacity = 4096;
  j.dst = dst;
  j.dst_capacity = 4096;
  j.dst_is_device = true;
  Status submitted, finished;
  std::thread fresh([&] {
    uint64_t t = 0;
    submitted = u_->submit(j, &t);
    if (submitted.ok()) finished = wait(*u_, t);
  });
  fresh.join();
  ASSERT_TRUE(submitted.ok()) << submitted.to_string();
  ASSERT_TRUE(finished.ok()) << finished.to_string();
  // The two fragments cover bytes [0, 4000); the rest keeps the guard.
  std::vector<uint8_t> got(4096), want(4096, kGuard);
  std::memcpy(want.data(), src + 1000, 3000);
  std::memcpy(want.data() + 3000, src, 1000);
  ASSERT_CUDA(cudaMemcpy(got.data(), dst, got.size(), cudaMemcpyDeviceToHost));
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace tcpx::unpack
