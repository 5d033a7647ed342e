// FifoItems filled in by the initiator (uccl_engine_update_fifo writes a raw
// address and size) are checked by the target: forged secrets and grant ids,
// ranges outside the prepared region, wrapping ranges and items of a
// deregistered region are refused with UCCL_P2P_E_REJECTED, memory stays
// untouched, and the connection keeps working for honest items.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "nixl_agent.h"

namespace uccl_p2p_test {
namespace {

constexpr size_t kLen = 64 * 1024;

class FifoValidation : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(initiator_->ok() && target_->ok());
    std::memset(ibuf_.data(), 0x11, kLen);
    std::memset(tbuf_.data(), 0x22, kLen);
    ASSERT_TRUE(initiator_->register_buffer(ibuf_.data(), kLen, &imd_));
    ASSERT_TRUE(target_->register_buffer(tbuf_.data(), kLen, &tmd_));
    ASSERT_TRUE(initiator_->connect_to("target", target_->conn_info()));
    conn_ = initiator_->conn("target");
  }

  // The item NIXL would send for [addr, addr+size), then `forge` applied.
  FifoItem item(const RemoteBuffer& md, uint64_t addr, uint32_t size,
                const std::function<void(FifoItem&)>& forge = nullptr) {
    FifoItem it;
    deserialize_fifo_item(md.fifo, &it);
    uccl_engine_update_fifo(it, addr, size);
    if (forge) forge(it);
    return it;
  }

  // Posts one piece of `size` bytes and waits for the final code.
  int transfer(bool is_read, const FifoItem& it, size_t size, std::string* why = nullptr) {
    uint64_t tid = 0;
    uccl_mr_t mr = initiator_->mr_of(ibuf_.data());
    int rc = is_read ? uccl_engine_read_vector(conn_, {mr}, {ibuf_.data()}, {size}, {it}, 1, &tid)
                     : uccl_engine_write_vector(conn_, {mr}, {ibuf_.data()}, {size}, {it}, 1, &tid);
    if (rc != 0) return rc;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    char reason[256];
    while (std::chrono::steady_clock::now() < deadline) {
      rc = uccl_engine_xfer_result(conn_, tid, reason, sizeof(reason));
      if (rc != UCCL_P2P_IN_PROGRESS) {
        if (why) *why = reason;
        return rc;
      }
      std::this_thread::yield();
    }
    return UCCL_P2P_E_TIMEOUT;
  }

  // Forged items, read and write: refused, nothing moved either way.
  void expect_rejected(const FifoItem& it, size_t size) {
    for (bool is_read : {true, false}) {
      std::string why;
      EXPECT_EQ(transfer(is_read, it, size, &why), UCCL_P2P_E_REJECTED) << (is_read ? "read" : "write") << ": " << why;
      EXPECT_TRUE(std::all_of(ibuf_.begin(), ibuf_.end(), [](uint8_t b) { return b == 0x11; }));
      EXPECT_TRUE(std::all_of(tbuf_.begin(), tbuf_.end(), [](uint8_t b) { return b == 0x22; }));
    }
  }

  // The buffers are declared first so they outlive the agents (dereg before free).
  std::vector<uint8_t> ibuf_ = std::vector<uint8_t>(kLen), tbuf_ = std::vector<uint8_t>(kLen);
  std::unique_ptr<NixlAgent> initiator_ = std::make_unique<NixlAgent>("initiator");
  std::unique_ptr<NixlAgent> target_ = std::make_unique<NixlAgent>("target");
  RemoteBuffer imd_, tmd_;
  uccl_conn_t* conn_ = nullptr;
};

TEST_F(FifoValidation, HonestItemWorksBeforeAndAfterForgeries) {
  EXPECT_EQ(transfer(false, item(tmd_, tmd_.addr + 100, 1000), 1000), 0);
  EXPECT_EQ(0, std::memcmp(tbuf_.data() + 100, ibuf_.data(), 1000));
  std::memset(tbuf_.data(), 0x22, kLen);
  expect_rejected(item(tmd_, tmd_.addr, 64, [](FifoItem& f) { f.padding[3] ^= 1; }), 64);
  EXPECT_EQ(transfer(true, item(tmd_, tmd_.addr, 4096), 4096), 0);
  EXPECT_EQ(0, std::memcmp(tbuf_.data(), ibuf_.data(), 4096));
}

TEST_F(FifoValidation, ForgedSecretIsRejected) {
  expect_rejected(item(tmd_, tmd_.addr, 64, [](FifoItem& f) { f.padding[0] ^= 0x80; }), 64);
  expect_rejected(item(tmd_, tmd_.addr, 64, [](FifoItem& f) { std::memset(f.padding, 0, sizeof(f.padding)); }), 64);
}

TEST_F(FifoValidation, ForgedGrantIdIsRejected) {
  expect_rejected(item(tmd_, tmd_.addr, 64, [](FifoItem& f) { f.idx += 1000; }), 64);
  expect_rejected(item(tmd_, tmd_.addr, 64, [](FifoItem& f) { f.idx = 0; }), 64);
}

TEST_F(FifoValidation, RangesOutsideThePreparedRegionAreRejected) {
  expect_rejected(item(tmd_, tmd_.addr - 1, 64), 64);                 // starts before
  expect_rejected(item(tmd_, tmd_.addr + kLen - 10, 20), 20);         // runs past the end
  expect_rejected(item(tmd_, tmd_.addr + kLen, 1), 1);                // just past the end
  expect_rejected(item(tmd_, UINT64_MAX - 5, 100), 100);              // wraps around
  expect_rejected(item(tmd_, reinterpret_cast<uint64_t>(&kLen), 8), 8);  // elsewhere entirely
  // The initiator's own piece is larger than the range it names.
  EXPECT_NE(transfer(true, item(tmd_, tmd_.addr, 16), 64), 0);
  EXPECT_TRUE(std::all_of(ibuf_.begin(), ibuf_.end(), [](uint8_t b) { return b == 0x11; }));
}

TEST_F(FifoValidation, SubrangeItemCoversOnlyItsSubrange) {
  // A second item for the middle of the registration only.
  RemoteBuffer sub = tmd_;
  uccl_mr_t mr = target_->mr_of(tbuf_.data());
  ASSERT_EQ(uccl_engine_prepare_fifo(target_->engine(), mr, tbuf_.data() + 1024, 1024, sub.fifo), 0);
  EXPECT_EQ(transfer(true, item(sub, tmd_.addr + 1024, 1024), 1024), 0);
  std::memset(ibuf_.data(), 0x11, kLen);
  expect_rejected(item(sub, tmd_.addr, 64), 64);          // inside the registration, not the grant
  expect_rejected(item(sub, tmd_.addr + 2000, 100), 100);  // crosses the grant's end
  // prepare_fifo itself refuses ranges outside the registration.
  char out[FIFO_SIZE];
  EXPECT_NE(uccl_engine_prepare_fifo(target_->engine(), mr, tbuf_.data() + kLen - 1, 2, out), 0);
  EXPECT_NE(uccl_engine_prepare_fifo(target_->engine(), mr + 999, tbuf_.data(), 2, out), 0);
}

TEST_F(FifoValidation, StaleItemOfADeregisteredRegionIsRejected) {
  FifoItem old = item(tmd_, tmd_.addr, 64);
  EXPECT_EQ(transfer(true, old, 64), 0);
  std::memset(ibuf_.data(), 0x11, kLen);
  uccl_engine_mr_destroy(target_->engine(), target_->mr_of(tbuf_.data()));
  expect_rejected(old, 64);
  // Registered again (same memory, new registration): the old item stays dead.
  uccl_mr_t again = 0;
  ASSERT_EQ(uccl_engine_reg(target_->engine(), tmd_.addr, kLen, again), 0);
  RemoteBuffer fresh = tmd_;
  ASSERT_EQ(uccl_engine_prepare_fifo(target_->engine(), again, tbuf_.data(), kLen, fresh.fifo), 0);
  expect_rejected(old, 64);
  EXPECT_EQ(transfer(true, item(fresh, tmd_.addr, 64), 64), 0);
  uccl_engine_mr_destroy(target_->engine(), again);
}

TEST_F(FifoValidation, ItemNotMadeByUsIsRefusedLocally) {
  FifoItem junk = item(tmd_, tmd_.addr, 64, [](FifoItem& f) { f.rkey = 0x12345678; });
  uint64_t tid = 0;
  uccl_mr_t mr = initiator_->mr_of(ibuf_.data());
  EXPECT_EQ(uccl_engine_read_vector(conn_, {mr}, {ibuf_.data()}, {64}, {junk}, 1, &tid), UCCL_P2P_E_INVALID);
  // Vectors shorter than num_iovs, an unknown local registration, a local
  // piece outside its registration: refused before anything is sent.
  FifoItem ok = item(tmd_, tmd_.addr, 64);
  EXPECT_EQ(uccl_engine_read_vector(conn_, {mr}, {ibuf_.data()}, {64}, {ok}, 2, &tid), UCCL_P2P_E_INVALID);
  EXPECT_EQ(uccl_engine_read_vector(conn_, {mr + 77}, {ibuf_.data()}, {64}, {ok}, 1, &tid), UCCL_P2P_E_NOT_FOUND);
  EXPECT_EQ(uccl_engine_read_vector(conn_, {mr}, {ibuf_.data() + kLen - 8}, {64}, {ok}, 1, &tid),
            UCCL_P2P_E_INVALID);
  char ipc[IPC_INFO_SIZE] = {};
  EXPECT_EQ(uccl_engine_read_vector(conn_, {mr}, {ibuf_.data()}, {64}, {ok}, 1, &tid, {ipc}),
            UCCL_P2P_E_UNSUPPORTED);
}

}  // namespace
}  // namespace uccl_p2p_test
