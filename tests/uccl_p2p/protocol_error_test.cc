// A peer that breaks the grant protocol: libuccl_p2p's grant service fails
// that one connection (as the C API's md service does). The transfer waiting
// for its grants ends with PROTOCOL_ERROR instead of waiting forever, later
// transfers on the connection are refused, the peer sees the connection
// closed, and another connection to the same peer keeps working. The peer
// here is a plain tcpx::Endpoint that answers a GRANT_REQUEST with garbage.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tcpx/config.h"
#include "tcpx/endpoint.h"
#include "uccl_p2p/uccl_engine.h"

namespace {

constexpr int kTimeoutMs = 10000;

int wait_result(uccl_conn_t* c, uint64_t tid, std::string* why) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
  char text[256] = {};
  int rc = UCCL_P2P_IN_PROGRESS;
  while (rc == UCCL_P2P_IN_PROGRESS && std::chrono::steady_clock::now() < deadline) {
    rc = uccl_engine_xfer_result(c, tid, text, sizeof(text));
    if (rc == UCCL_P2P_IN_PROGRESS) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  *why = text;
  return rc;
}

TEST(UcclP2pProtocolError, GarbageForAGrantReplyFailsOnlyThatConnection) {
  tcpx::Config config;
  ASSERT_TRUE(tcpx::Config::from_env(&config).ok());
  std::unique_ptr<tcpx::Endpoint> peer;
  ASSERT_TRUE(tcpx::Endpoint::create(0, config, &peer).ok());
  const tcpx::PeerInfo& at = peer->local_info();

  uccl_engine_t* e = uccl_engine_create(1, false);
  ASSERT_NE(e, nullptr);
  std::vector<uint8_t> buf(4096, 0);
  uccl_mr_t mr = 0;
  ASSERT_EQ(uccl_engine_reg(e, reinterpret_cast<uintptr_t>(buf.data()), buf.size(), mr), 0);
  // Any item of ours passes the initiator's local checks; the peer decides.
  char fifo_buf[FIFO_SIZE];
  ASSERT_EQ(uccl_engine_prepare_fifo(e, mr, buf.data(), buf.size(), fifo_buf), 0);
  FifoItem item;
  deserialize_fifo_item(fifo_buf, &item);

  std::string gpu = std::to_string(at.gpu_idx);
  uccl_conn_t* bad = uccl_engine_connect(e, at.ip.c_str(), gpu.c_str(), at.port, false);
  uccl_conn_t* good = uccl_engine_connect(e, at.ip.c_str(), gpu.c_str(), at.port, false);
  ASSERT_NE(bad, nullptr);
  ASSERT_NE(good, nullptr);
  tcpx::ConnId peer_bad = 0, peer_good = 0;
  ASSERT_TRUE(peer->accept(&peer_bad, nullptr, kTimeoutMs).ok());
  ASSERT_TRUE(peer->accept(&peer_good, nullptr, kTimeoutMs).ok());

  uint64_t tid = 0;
  ASSERT_EQ(uccl_engine_read(bad, mr, buf.data(), buf.size(), item, &tid), UCCL_P2P_OK);
  std::vector<uint8_t> request;
  ASSERT_TRUE(peer->recv_message(peer_bad, &request, kTimeoutMs).ok());
  ASSERT_GE(request.size(), 6u);
  EXPECT_EQ(request[5], 1);  // "UP2P", version, type GRANT_REQUEST (messages.cc)
  const uint8_t garbage[] = {0x77, 'n', 'o', 't', ' ', 'a', ' ', 'g', 'r', 'a', 'n', 't'};
  ASSERT_TRUE(peer->send_message(peer_bad, garbage, sizeof(garbage)).ok());

  std::string why;
  EXPECT_EQ(wait_result(bad, tid, &why), UCCL_P2P_E_PROTOCOL) << why;
  EXPECT_NE(why.find("uccl_p2p"), std::string::npos) << why;
  // The connection is gone: a new transfer is refused at once, and the peer
  // sees it closed.
  EXPECT_EQ(uccl_engine_read(bad, mr, buf.data(), buf.size(), item, &tid), UCCL_P2P_E_PROTOCOL);
  std::vector<uint8_t> more;
  EXPECT_EQ(peer->recv_message(peer_bad, &more, kTimeoutMs).code(), tcpx::StatusCode::kPeerClosed);

  // The other connection to the same peer still carries requests.
  ASSERT_EQ(uccl_engine_read(good, mr, buf.data(), buf.size(), item, &tid), UCCL_P2P_OK);
  ASSERT_TRUE(peer->recv_message(peer_good, &request, kTimeoutMs).ok());
  ASSERT_GE(request.size(), 6u);
  EXPECT_EQ(request[5], 1);

  uccl_engine_conn_destroy(bad);
  uccl_engine_conn_destroy(good);
  // The read on `good` never got its grants: destroying the connection ended it.
  uccl_engine_mr_destroy(e, mr);
  uccl_engine_destroy(e);
}

}  // namespace
