// Wrong and hostile requests against a C API target in another process: each
// ends in an error status at the initiator (xfer_status stays 0,
// xfer_result gives the error), the target keeps serving, nothing hangs.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "agent_fixture.h"
#include "support/status_assert.h"

namespace capi_test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t MiB = 1024 * 1024;

class HostileTest : public AgentFixture {
 protected:
  void SetUp() override {
    AgentFixture::SetUp();
    if (HasFatalFailure()) return;
    good_remote_ = peer_buffer(1, kGood, 77);
    ASSERT_NE(good_remote_, 0u);
    good_local_ = local_buffer(kGood, -1);
  }

  // Answer to READ item `id`: waits until it is no longer IN_PROGRESS.
  int fifo_answer(uccl_conn_t* c, int id, char* item) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    int rc;
    while ((rc = uccl_engine_get_fifo_item(c, id, item)) == UCCL_IN_PROGRESS &&
           Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return rc;
  }

  // Waits until the transfer is final; returns xfer_result's code.
  int final_result(uccl_conn_t* c, uint64_t tid, std::string* msg, int timeout_ms = 15000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    char text[256] = {0};
    int rc;
    for (;;) {
      int done = uccl_engine_xfer_status(c, tid);
      rc = uccl_engine_xfer_result(c, tid, text, sizeof(text));
      if (done) {
        EXPECT_EQ(rc, 0) << "xfer_status said done but result is " << rc;
      }
      if (rc != UCCL_IN_PROGRESS || Clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (msg) *msg = text;
    return rc;
  }

  void expect_read_rejected(uint64_t remote, uint64_t size) {
    md_t md;
    std::memset(&md, 0, sizeof(md));
    md.op = UCCL_READ;
    md.data.tx_data.data_ptr = remote;
    md.data.tx_data.data_size = size;
    ASSERT_EQ(uccl_engine_send_tx_md_vector(conn_, &md, 1), 0);
    char item[FIFO_ITEM_SIZE];
    ASSERT_EQ(fifo_answer(conn_, 0, item), UCCL_E_REJECTED);
    // A caller that ignores the code and reads anyway gets a failed transfer.
    uint64_t tid = 0;
    ASSERT_EQ(uccl_engine_read(conn_, good_local_->mr, good_local_->data, 64, item, &tid), 0);
    EXPECT_EQ(uccl_engine_xfer_status(conn_, tid), 0);
    std::string msg;
    EXPECT_EQ(final_result(conn_, tid, &msg), UCCL_E_REJECTED) << msg;
    EXPECT_EQ(msg.rfind("REJECTED: target rejected the READ request: ", 0), 0u) << msg;
    EXPECT_EQ(uccl_engine_xfer_status(conn_, tid), 0);
    EXPECT_EQ(good_local_->data[0], 0xEE) << "a rejected read wrote data";
  }

  void expect_write_rejected(uint64_t remote, uint64_t size) {
    md_t md;
    std::memset(&md, 0, sizeof(md));
    md.op = UCCL_WRITE;
    md.data.tx_data.data_ptr = remote;
    md.data.tx_data.data_size = size;
    ASSERT_EQ(uccl_engine_send_tx_md_vector(conn_, &md, 1), 0);
    uint64_t tid = 0;
    ASSERT_EQ(uccl_engine_write(conn_, good_local_->mr, good_local_->data, 64, &tid), 0);
    std::string msg;
    EXPECT_EQ(final_result(conn_, tid, &msg), UCCL_E_REJECTED) << msg;
    EXPECT_EQ(msg.rfind("REJECTED: target rejected the WRITE request: ", 0), 0u) << msg;
    EXPECT_EQ(uccl_engine_xfer_status(conn_, tid), 0);
  }

  // A valid READ on `c` still works and moves the right bytes. The FIFO
  // answer may take up to 10 s here: these tests are about rejection, not
  // timing (NIXL's 5 x 1 ms budget is held by capi_nixl_test; a fresh
  // connection's first answer can miss it on a loaded 2-core host while the
  // target's accept thread gets scheduled).
  void expect_still_serves(uccl_conn_t* c) {
    std::memset(good_local_->data, 0xEE, kGood);
    md_t md;
    std::memset(&md, 0, sizeof(md));
    md.op = UCCL_READ;
    md.data.tx_data.data_ptr = good_remote_ + 100;
    md.data.tx_data.data_size = 4000;
    ASSERT_EQ(uccl_engine_send_tx_md_vector(c, &md, 1), 0);
    char item[FIFO_ITEM_SIZE];
    ASSERT_EQ(fifo_answer(c, 0, item), 0);
    uint64_t tid = 0;
    ASSERT_EQ(uccl_engine_read(c, good_local_->mr, good_local_->data, 4000, item, &tid), 0);
    std::string msg;
    ASSERT_EQ(final_result(c, tid, &msg), 0) << msg;
    EXPECT_EQ(uccl_engine_xfer_status(c, tid), 1);
    EXPECT_EQ(check_pattern(good_local_->data, 4000, 77, 100), kPatternMatches);
    std::memset(good_local_->data, 0xEE, kGood);
  }

  static constexpr size_t kGood = 1 << 16;
  uint64_t good_remote_ = 0;
  LocalBuffer* good_local_ = nullptr;
};

TEST_F(HostileTest, UnknownRegion) {
  expect_read_rejected(0x10000, 64);
  expect_write_rejected(0x10000, 64);
  expect_read_rejected(good_remote_ + kGood + 4 * MiB, 64);  // nowhere near a registration
  expect_still_serves(conn_);
}

TEST_F(HostileTest, OffsetOrSizeOutOfBounds) {
  expect_read_rejected(good_remote_ + kGood - 10, 100);  // runs past the end
  expect_read_rejected(good_remote_ - 8, 64);           // starts before it
  expect_write_rejected(good_remote_, kGood + 1);
  expect_read_rejected(good_remote_ + 10, 0);            // empty
  expect_still_serves(conn_);
}

TEST_F(HostileTest, SizeOverflowWraps) {
  expect_read_rejected(good_remote_ + 16, UINT64_MAX - 8);  // data_ptr + size wraps
  expect_write_rejected(good_remote_ + 16, UINT64_MAX);
  expect_read_rejected(UINT64_MAX - 100, 200);
  expect_still_serves(conn_);
}

TEST_F(HostileTest, RegionDeregisteredWhileRequestInFlight) {
  uint64_t victim = peer_buffer(2, 1 * MiB, 88);
  ASSERT_NE(victim, 0u);
  LocalBuffer* dst = local_buffer(1 * MiB, -1);
  // READ advertised, then the target deregisters before the read arrives.
  md_t md[2];
  std::memset(md, 0, sizeof(md));
  md[0].op = UCCL_READ;
  md[0].data.tx_data = {victim, 1 * MiB};
  md[1].op = UCCL_READ;
  md[1].data.tx_data = {good_remote_, 4096};
  ASSERT_EQ(uccl_engine_send_tx_md_vector(conn_, md, 2), 0);
  char item0[FIFO_ITEM_SIZE], item1[FIFO_ITEM_SIZE];
  ASSERT_EQ(fifo_answer(conn_, 0, item0), 0);
  ASSERT_EQ(fifo_answer(conn_, 1, item1), 0);
  (void)peer_.write_line("DEREG 2");
  ASSERT_OK(peer_.expect_line("DONE", nullptr, 30000));
  uint64_t tid = 0;
  ASSERT_EQ(uccl_engine_read(conn_, dst->mr, dst->data, 1 * MiB, item0, &tid), 0);
  std::string msg;
  int rc = final_result(conn_, tid, &msg);
  EXPECT_LT(rc, 0) << "read of a deregistered region: " << rc << " " << msg;
  EXPECT_EQ(uccl_engine_xfer_status(conn_, tid), 0);
  EXPECT_EQ(dst->data[0], 0xEE);
  EXPECT_EQ(dst->data[1 * MiB - 1], 0xEE);
  // The other item of the same vector is still good.
  ASSERT_EQ(uccl_engine_read(conn_, good_local_->mr, good_local_->data, 4096, item1, &tid), 0);
  EXPECT_EQ(final_result(conn_, tid, &msg), 0) << msg;
  EXPECT_EQ(check_pattern(good_local_->data, 4096, 77, 0), kPatternMatches);

  // WRITE advertised, then deregistered.
  uint64_t victim2 = peer_buffer(3, 4096, 89);
  md[0].op = UCCL_WRITE;
  md[0].data.tx_data = {victim2, 4096};
  ASSERT_EQ(uccl_engine_send_tx_md_vector(conn_, md, 1), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the slot arrive
  (void)peer_.write_line("DEREG 3");
  ASSERT_OK(peer_.expect_line("DONE", nullptr, 30000));
  rc = uccl_engine_write(conn_, good_local_->mr, good_local_->data, 4096, &tid);
  if (rc == 0) {
    rc = final_result(conn_, tid, &msg);
    EXPECT_EQ(uccl_engine_xfer_status(conn_, tid), 0);
  }
  EXPECT_LT(rc, 0) << "write into a deregistered region: " << msg;
  expect_still_serves(conn_);
}

TEST_F(HostileTest, MalformedVectorCounts) {
  md_t md[2];
  std::memset(md, 0, sizeof(md));
  md[0].op = UCCL_READ;
  md[0].data.tx_data = {good_remote_, 64};
  EXPECT_EQ(uccl_engine_send_tx_md_vector(conn_, md, 0), UCCL_E_INVALID);
  EXPECT_EQ(uccl_engine_send_tx_md_vector(conn_, md, size_t{UCCL_MAX_MD_VECTOR} + 1),
            UCCL_E_INVALID);
  EXPECT_EQ(uccl_engine_send_tx_md_vector(conn_, md, SIZE_MAX), UCCL_E_INVALID);
  EXPECT_EQ(uccl_engine_send_tx_md_vector(conn_, nullptr, 1), UCCL_E_INVALID);
  md[1].op = UCCL_FIFO;  // a reply type is not a request
  EXPECT_EQ(uccl_engine_send_tx_md_vector(conn_, md, 2), UCCL_E_INVALID);
  char item[FIFO_ITEM_SIZE];
  ASSERT_EQ(uccl_engine_send_tx_md_vector(conn_, md, 1), 0);
  EXPECT_EQ(uccl_engine_get_fifo_item(conn_, 1, item), UCCL_E_INVALID);
  EXPECT_EQ(uccl_engine_get_fifo_item(conn_, -1, item), UCCL_E_INVALID);
  EXPECT_EQ(fifo_answer(conn_, 0, item), 0);
  uint64_t tid;
  // write() with no WRITE item ever sent fails at once instead of waiting.
  EXPECT_EQ(uccl_engine_write(conn_, good_local_->mr, good_local_->data, 64, &tid),
            UCCL_E_INVALID);

  // On the wire: each malformed message closes only that connection.
  for (const char* mode :
       {"zero-count", "huge-count", "short", "bad-magic", "unknown-type", "garbage"}) {
    ChildProcess hostile;
    std::string line;
    ASSERT_OK(hostile.spawn({helper_path("capi_hostile_client"), peer_meta_, mode},
                            tcpx::test::ChildOptions::line_protocol()));
    ASSERT_OK(hostile.read_line(&line, 30000)) << mode;
    EXPECT_EQ(line.rfind("CLOSED", 0), 0u) << mode << ": " << line;
    EXPECT_EQ(hostile.wait_exit(10000), 0) << mode;
    expect_still_serves(conn_);
  }
}

TEST_F(HostileTest, TargetDestroysConnWithTransfersOutstanding) {
  constexpr int kBig = 6;
  uint64_t big = peer_buffer(5, 16 * MiB, 55);
  ASSERT_NE(big, 0u);
  LocalBuffer* dst = local_buffer(kBig * 16 * MiB, -1);
  std::vector<md_t> md(kBig);
  for (int i = 0; i < kBig; ++i) {
    std::memset(&md[i], 0, sizeof(md_t));
    md[i].op = UCCL_READ;
    md[i].data.tx_data = {big, 16 * MiB};
  }
  ASSERT_EQ(uccl_engine_send_tx_md_vector(conn_, md.data(), md.size()), 0);
  std::vector<uint64_t> tids;
  for (int i = 0; i < kBig; ++i) {
    char item[FIFO_ITEM_SIZE];
    ASSERT_EQ(fifo_answer(conn_, i, item), 0);
    uint64_t tid;
    ASSERT_EQ(uccl_engine_read(conn_, dst->mr, dst->data + i * 16 * MiB, 16 * MiB, item, &tid), 0);
    tids.push_back(tid);
  }
  (void)peer_.write_line("DESTROY_ACCEPTED");
  ASSERT_OK(peer_.expect_line("DONE", nullptr, 15000));
  int failed = 0;
  for (int i = 0; i < kBig; ++i) {
    std::string msg;
    int rc = final_result(conn_, tids[static_cast<size_t>(i)], &msg);
    ASSERT_NE(rc, UCCL_IN_PROGRESS) << "transfer " << i << " never ended";
    if (rc == 0) {
      EXPECT_EQ(check_pattern(dst->data + i * 16 * MiB, 16 * MiB, 55, 0), kPatternMatches);
    } else {
      ++failed;
      EXPECT_EQ(uccl_engine_xfer_status(conn_, tids[static_cast<size_t>(i)]), 0);
    }
  }
  std::printf("[ info ] %d of %d outstanding reads failed when the target closed\n", failed,
              kBig);
  // The closed connection reports errors; a new one works.
  auto deadline = Clock::now() + std::chrono::seconds(10);
  int rc = 0;
  while (Clock::now() < deadline) {
    rc = uccl_engine_send_tx_md_vector(conn_, md.data(), 1);
    if (rc < 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LT(rc, 0);
  uccl_conn_t* fresh = connect_to_peer();
  ASSERT_NE(fresh, nullptr);
  extra_conns_.push_back(fresh);
  expect_still_serves(fresh);
}

TEST_F(HostileTest, InitiatorDestroysConnWithTransfersOutstanding) {
  uint64_t big = peer_buffer(6, 32 * MiB, 66);
  LocalBuffer* dst = local_buffer(32 * MiB, -1);
  uccl_conn_t* c = connect_to_peer();
  ASSERT_NE(c, nullptr);
  md_t md;
  std::memset(&md, 0, sizeof(md));
  md.op = UCCL_READ;
  md.data.tx_data = {big, 32 * MiB};
  ASSERT_EQ(uccl_engine_send_tx_md_vector(c, &md, 1), 0);
  char item[FIFO_ITEM_SIZE];
  ASSERT_EQ(fifo_answer(c, 0, item), 0);
  uint64_t tid;
  ASSERT_EQ(uccl_engine_read(c, dst->mr, dst->data, 32 * MiB, item, &tid), 0);
  auto t0 = Clock::now();
  uccl_engine_conn_destroy(c);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_LT(ms, 2000) << "conn_destroy took " << ms << " ms";
  expect_still_serves(conn_);
}

TEST_F(HostileTest, PeerKilledMidTransfer) {
  uint64_t big = peer_buffer(7, 64 * MiB, 99);
  LocalBuffer* dst = local_buffer(64 * MiB, -1);
  md_t md[4];
  std::memset(md, 0, sizeof(md));
  for (auto& m : md) {
    m.op = UCCL_READ;
    m.data.tx_data = {big, 64 * MiB};
  }
  ASSERT_EQ(uccl_engine_send_tx_md_vector(conn_, md, 4), 0);
  std::vector<uint64_t> tids;
  for (int i = 0; i < 4; ++i) {
    char item[FIFO_ITEM_SIZE];
    ASSERT_EQ(fifo_answer(conn_, i, item), 0);
    uint64_t tid;
    ASSERT_EQ(uccl_engine_read(conn_, dst->mr, dst->data, 64 * MiB, item, &tid), 0);
    tids.push_back(tid);
  }
  peer_.kill_and_reap();
  auto t0 = Clock::now();
  int failed = 0;
  for (uint64_t tid : tids) {
    std::string msg;
    int rc = final_result(conn_, tid, &msg, 15000);
    ASSERT_NE(rc, UCCL_IN_PROGRESS) << "transfer still running 15 s after the peer died";
    if (rc != 0) ++failed;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  std::printf("[ info ] %d of 4 reads failed, all final %lld ms after kill -9\n", failed,
              static_cast<long long>(ms));
  EXPECT_LT(ms, 10000);
  auto t1 = Clock::now();
  uccl_engine_conn_destroy(conn_);
  conn_ = nullptr;
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t1).count(),
            2000);
}

}  // namespace
}  // namespace capi_test
