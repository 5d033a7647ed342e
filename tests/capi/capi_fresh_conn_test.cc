// A connection's first md vector, sent the moment the connection exists, is
// answered. Regression for a lost first message: the target's handshake read
// the initiator's READY and the md vector in one recv(), kept the message in
// the control channel's buffer, and the engine never looked there again (the
// socket never polled readable for bytes already read), so the FIFO answer
// never came.
#include <gtest/gtest.h>

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

class FreshConnTest : public AgentFixture {};

// Deterministic: the helper sends READY and the md vector in one send(), so
// the target's handshake always reads both together.
TEST_F(FreshConnTest, MdVectorInTheSameSegmentAsReadyIsAnswered) {
  uint64_t remote = peer_buffer(1, 4096, 5);
  ASSERT_NE(remote, 0u);
  for (int i = 0; i < 3; ++i) {
    ChildProcess client;
    std::string line;
    ASSERT_OK(client.spawn({helper_path("capi_early_message_client"), peer_meta_, std::to_string(remote + 64),
                            "1024", "5000"},
                           tcpx::test::ChildOptions::line_protocol()));
    ASSERT_OK(client.read_line(&line, 40000)) << "client said nothing";
    EXPECT_EQ(line, "REPLY 0") << "connection " << i;
    EXPECT_EQ(client.wait_exit(10000), 0);
  }
}

// Through the C API as NIXL uses it: many fresh connections, each sending its
// md vector at once; every first answer arrives, and within NIXL's budget on
// most of them (all of them on an idle host).
TEST_F(FreshConnTest, ManyFreshConnectionsEachSendAnMdVectorAtOnce) {
  constexpr int kConns = 24;
  uint64_t remote = peer_buffer(1, 1 << 16, 9);
  ASSERT_NE(remote, 0u);
  LocalBuffer* dst = local_buffer(4096, -1);
  for (int i = 0; i < kConns; ++i) {
    uccl_conn_t* c = connect_to_peer();
    ASSERT_NE(c, nullptr) << "connection " << i;
    extra_conns_.push_back(c);
    md_t md;
    std::memset(&md, 0, sizeof(md));
    md.op = UCCL_READ;
    md.data.tx_data.data_ptr = remote + 64 * static_cast<uint64_t>(i);
    md.data.tx_data.data_size = 4096;
    ASSERT_EQ(uccl_engine_send_tx_md_vector(c, &md, 1), 0);
    char item[FIFO_ITEM_SIZE];
    auto deadline = Clock::now() + std::chrono::seconds(10);
    int rc;
    while ((rc = uccl_engine_get_fifo_item(c, 0, item)) == UCCL_IN_PROGRESS &&
           Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_EQ(rc, 0) << "first FIFO answer of fresh connection " << i << " never came";
    uint64_t tid = 0;
    ASSERT_EQ(uccl_engine_read(c, dst->mr, dst->data, 4096, item, &tid), 0);
    deadline = Clock::now() + std::chrono::seconds(10);
    while (uccl_engine_xfer_status(c, tid) == 0 && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    char msg[256];
    ASSERT_EQ(uccl_engine_xfer_result(c, tid, msg, sizeof(msg)), 0) << msg;
    ASSERT_EQ(check_pattern(dst->data, 4096, 9, 64 * static_cast<uint64_t>(i)), kPatternMatches) << i;
  }
}

}  // namespace
}  // namespace capi_test
