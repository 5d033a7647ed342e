// RecvQueue (src/engine/comm_queue.h) against the built-in plugin in its
// bounce mode, in one process: every receive lands in the bounce buffer and
// is unpacked by the "CUDA" unpacker, here a stand-in that copies on the CPU
// and refuses jobs the way the real one does when it holds as many as it can
// (BUSY: running, or finished but not yet collected by their owners). A
// refused unpack is started on a later pass, never a failure of the comm,
// and the bytes land in order; a queue that goes with its comm releases the
// tickets nobody will query.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "engine/comm_queue.h"
#include "harness/plugin_ends.h"
#include "support/pattern.h"
#include "test_util.h"
#include "unpack/unpacker.h"

using namespace tcpx;
using namespace tcpx::engine;

namespace {

constexpr int kMessages = 64;
constexpr int kBytes = 12 * 1024 + 5;  // several pages, an odd tail

// The CPU unpacker behind the Unpacker interface of the CUDA one, refusing
// every other submit with BUSY, or (stuck) never finishing a job.
class ChoosyUnpacker final : public unpack::Unpacker {
 public:
  explicit ChoosyUnpacker(bool stuck) : stuck_(stuck) {}
  Status submit(const unpack::UnpackJob& job, uint64_t* ticket) override {
    if (++submits_ % 2 == 1) {
      ++refused;
      return Status(StatusCode::kBusy, "stand-in unpacker full");
    }
    unpack::UnpackJob host = job;
    host.dst_is_device = false;  // "device" memory is host memory here
    TCPX_RETURN_IF_ERROR(cpu_->submit(host, ticket));
    issued.insert(*ticket);
    return Status::Ok();
  }
  Status query(uint64_t ticket) override {
    if (stuck_) return Status(StatusCode::kInProgress, "never finishes");
    return cpu_->query(ticket);
  }
  void release(uint64_t ticket) override { released.insert(ticket); }
  const char* name() const override { return "choosy"; }

  int refused = 0;
  std::set<uint64_t> issued, released;

 private:
  bool stuck_;
  uint64_t submits_ = 0;
  std::unique_ptr<unpack::Unpacker> cpu_ = unpack::make_cpu_unpacker();
};

class RecvQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::set_test_env(test::PluginMode::kBounce);
    Status s = net::Transport::load("", &transport_);
    ASSERT_TRUE(s.ok()) << s.to_string();
    const ncclNet_v7_t* net = &transport_->v();
    net::NetHandle handle{};
    ASSERT_TRUE(conformance::listen_end(net, 0, &handle, &recv_).ok());
    Status connected;
    std::thread connector([&] { connected = conformance::connect_end(net, 0, &handle, &send_); });
    Status accepted = conformance::accept_end(&recv_);
    connector.join();
    ASSERT_TRUE(connected.ok()) << connected.to_string();
    ASSERT_TRUE(accepted.ok()) << accepted.to_string();
    ASSERT_NE(recv_.unpack(), nullptr) << "the built-in plugin publishes no unpack handle in bounce mode";
    src_.resize(size_t{kMessages} * kBytes);
    dst_.assign(src_.size(), 0);
    test::fill_pattern(src_.data(), src_.size(), 41);
    ASSERT_EQ(send_mr_.reg(net, send_.comm, src_.data(), static_cast<int>(src_.size()), NCCL_PTR_HOST), ncclSuccess);
    ASSERT_EQ(recv_mr_.reg(net, recv_.comm, dst_.data(), static_cast<int>(dst_.size()), NCCL_PTR_HOST), ncclSuccess);
  }

  // Pushes every message on both queues and drives them until all
  // receives are done (or stuck: until every receive was unpacked).
  void run(RecvQueue* rq, ChoosyUnpacker* u, bool stuck) {
    SendQueue sq(transport_.get(), send_.comm);
    for (int i = 0; i < kMessages; ++i) {
      ChunkReq s;
      s.owner = &owners_[i];
      s.data = src_.data() + size_t(i) * kBytes;
      s.size = kBytes;
      s.mh = send_mr_.get();
      sq.push(s);
      ChunkReq r = s;
      r.data = dst_.data() + size_t(i) * kBytes;
      r.mh = recv_mr_.get();
      r.dst_cuda = true;  // unpacked by the "CUDA" unpacker
      rq->push(r);
    }
    std::vector<void*> sent, received;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < give_up) {
      bool moved = false;
      Status s = sq.progress(&sent, &moved);
      ASSERT_TRUE(s.ok()) << s.to_string();
      s = rq->progress(&received, &moved);
      ASSERT_TRUE(s.ok()) << "a refused unpack must not fail the comm: " << s.to_string();
      if (!stuck && received.size() == kMessages) break;
      if (stuck && u->issued.size() == std::min<size_t>(kMessages, kWindow)) break;
    }
    if (stuck) return;
    ASSERT_EQ(received.size(), size_t{kMessages});
    for (int i = 0; i < kMessages; ++i) EXPECT_EQ(received[i], &owners_[i]) << "completed out of order at " << i;
  }

  std::shared_ptr<net::Transport> transport_;
  conformance::RecvEnd recv_;
  conformance::SendEnd send_;
  std::vector<uint8_t> src_, dst_;
  conformance::Registration send_mr_, recv_mr_;
  int owners_[kMessages] = {};
};

TEST_F(RecvQueueTest, ARefusedUnpackIsStartedOnALaterPassAndTheBytesLandInOrder) {
  ChoosyUnpacker u(/*stuck=*/false);
  auto cpu = unpack::make_cpu_unpacker();
  RecvQueue rq(transport_.get(), recv_.comm, *recv_.dev, cpu.get(), &u, nullptr);
  run(&rq, &u, false);
  EXPECT_GE(u.refused, kMessages);
  EXPECT_EQ(u.issued.size(), size_t{kMessages});
  EXPECT_EQ(std::memcmp(src_.data(), dst_.data(), src_.size()), 0) << "received bytes differ";
}

TEST_F(RecvQueueTest, AQueueThatGoesWithItsCommReleasesTheTicketsNobodyWillQuery) {
  ChoosyUnpacker u(/*stuck=*/true);
  auto cpu = unpack::make_cpu_unpacker();
  {
    RecvQueue rq(transport_.get(), recv_.comm, *recv_.dev, cpu.get(), &u, nullptr);
    run(&rq, &u, true);
    ASSERT_FALSE(u.issued.empty());
    EXPECT_TRUE(u.released.empty());
  }
  EXPECT_EQ(u.released, u.issued);
}

}  // namespace
