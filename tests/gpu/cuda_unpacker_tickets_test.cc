// The CUDA unpacker keeps a job's result until its owner has seen it. The
// library reuses a finished job's record TCPX_CUDA_UNPACK_RING tickets later;
// a receive that queried its job only after that many other submits (a
// dozen connections receiving into GPU memory in one pass) used to get
// UNKNOWN_TICKET and fail its connection. Now such a submit is refused with
// BUSY until the old ticket is collected (queried to its end, or released).
// Runs on a GPU and, in the "emulated_late." run, on the stand-in library
// that forgets reused records as the real one does.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "cuda/cuda_ops.h"
#include "device_memory.h"
#include "unpack/unpacker.h"

using namespace tcpx;
using namespace tcpx::gputest;

namespace {

constexpr uint64_t kRing = unpack::Unpacker::kMaxTicketsInFlight;
constexpr size_t kBytes = 4096;

class CudaUnpackerTickets : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = gpu_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    Status s = unpack::make_cuda_unpacker(0, &u_);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_TRUE(dev_.allocate(Kind::kGpu, kBytes, &why)) << why;
    void* h = nullptr;
    ASSERT_EQ(cuda::ops()->host_alloc_mapped(kBytes, &h, nullptr), 0);
    host_ = h;
  }
  void TearDown() override {
    u_.reset();
    if (host_ != nullptr) cuda::ops()->host_free(host_);
  }

  Status submit(uint64_t* t) { return u_->submit_copy(dev_.data(), host_, kBytes, t); }
  // Queries t until it is no longer running (the copy takes microseconds,
  // 200 us in the emulated run).
  Status finish(uint64_t t) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      Status s = u_->query(t);
      if (!s.in_progress() || std::chrono::steady_clock::now() > give_up) return s;
    }
  }

  std::unique_ptr<unpack::Unpacker> u_;
  Region dev_;
  void* host_ = nullptr;
};

TEST_F(CudaUnpackerTickets, AFinishedJobIsKeptUntilItsOwnerQueriesIt) {
  uint64_t first = 0;
  Status s = submit(&first);
  ASSERT_TRUE(s.ok()) << s.to_string();
  // Others come and go while the owner of `first` looks elsewhere.
  uint64_t others = 0;
  for (; others < 2 * kRing; ++others) {
    uint64_t t = 0;
    s = submit(&t);
    if (s.code() == StatusCode::kBusy) break;
    ASSERT_TRUE(s.ok()) << s.to_string();
    s = finish(t);
    ASSERT_TRUE(s.ok()) << "ticket " << t << ": " << s.to_string();
  }
  EXPECT_EQ(others, kRing - 1) << "submits must be refused once the next one would reuse the record of an "
                                  "uncollected ticket";
  EXPECT_NE(s.message().find("not yet collected"), std::string::npos) << s.to_string();
  s = finish(first);
  EXPECT_TRUE(s.ok()) << "the late owner's job: " << s.to_string();
  // Collected: room again.
  uint64_t t = 0;
  s = submit(&t);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(finish(t).ok());
}

TEST_F(CudaUnpackerTickets, AReleasedTicketNeedsNoQuery) {
  uint64_t abandoned = 0;
  Status s = submit(&abandoned);
  ASSERT_TRUE(s.ok()) << s.to_string();
  u_->release(abandoned);  // its receive went with its connection
  for (uint64_t i = 0; i < 2 * kRing; ++i) {
    uint64_t t = 0;
    s = submit(&t);
    ASSERT_TRUE(s.ok()) << "submit " << i << ": " << s.to_string();
    ASSERT_TRUE(finish(t).ok());
  }
}

}  // namespace
