// One test per row of the ncclNet v7 behaviour table (docs/design.md section
// 2). Each pair test has a driver half (this process) and a peer half (a
// second process, possibly on another host); `if (is_peer())` splits them.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "harness/conformance_fixture.h"
#include "harness/message_streams.h"
#include "harness/patterns.h"
#include "harness/unpack_check.h"

namespace tcpx::conformance {
namespace {

using Clock = std::chrono::steady_clock;

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

// The 17th outstanding request on a comm. TCPX and the built-in refuse it
// with 3 (exactly 3 is checked on the built-in; any refusal elsewhere, a
// success with a NULL request included, which NCCL reads as "try later").
// Other plugins (aws-ofi-nccl) keep deeper windows; the engine never posts
// more than 16, so a foreign plugin that takes the 17th passes, and that
// request then simply completes with the others. Returns whether it was taken.
bool seventeenth_taken(bool builtin, ncclResult_t rc, void* request, const char* what) {
  if (builtin) {
    EXPECT_EQ(rc, ncclInternalError) << "the 17th outstanding " << what
                                     << " must fail with 3, not succeed or return a NULL request";
    return false;
  }
  return rc == ncclSuccess && request != nullptr;
}

// Tests the newer of two outstanding requests. TCPX and the built-in refuse
// it (5 on the built-in; TCPX says 3); other plugins (aws-ofi-nccl) let any
// request be tested, which the engine never relies on, so a foreign plugin
// may accept it. Returns whether the request is already done (and so must not
// be tested again).
bool test_newer_request(const ncclNet_v7_t* net, void* request, bool builtin, const char* what) {
  int done = 0;
  ncclResult_t rc = net->test(request, &done, nullptr);
  if (!builtin && rc == ncclSuccess) return done != 0;
  EXPECT_TRUE(refused(rc, ncclInvalidUsage, builtin)) << "test of the second " << what;
  EXPECT_EQ(done, 0);
  return false;
}

// A call that the contract says must not block may still take a moment on a
// loaded host; a second is far from "waits for the peer".
constexpr long kNonBlockingMs = 1000;

TEST_P(NetModeTest, PropertiesAreSane) {
  int ndev = -1;
  ASSERT_EQ(net()->devices(&ndev), ncclSuccess);
  ASSERT_GE(ndev, 1) << "a usable plugin reports at least one device";
  for (int d = 0; d < ndev; ++d) {
    SCOPED_TRACE("device " + std::to_string(d));
    ncclNetProperties_v7_t p{};
    ASSERT_EQ(net()->getProperties(d, &p), ncclSuccess);
    EXPECT_NE(p.name, nullptr);
    EXPECT_EQ(p.maxRecvs, 1) << "TCPX receives one buffer per irecv";
    EXPECT_TRUE(p.ptrSupport & mem_type()) << "ptrSupport " << p.ptrSupport << " lacks this mode's memory type";
    // The speed is advisory (NCCL uses it to rank NICs); aws-ofi-nccl reports
    // 0 for an interface it has no NIC data for (loopback).
    if (builtin()) {
      EXPECT_GT(p.speed, 0);
    }
    EXPECT_GE(p.speed, 0);
    EXPECT_GE(p.maxComms, 1);
    if (builtin()) {
      EXPECT_EQ(p.netDeviceType, NCCL_NET_DEVICE_UNPACK) << "the built-in plugin emulates TCPX's unpack path";
    }
    if (p.netDeviceType == NCCL_NET_DEVICE_UNPACK) {
      EXPECT_EQ(p.netDeviceVersion, NCCL_NET_DEVICE_UNPACK_VERSION);
    }
  }
}

TEST_P(NetPairTest, ConnectAndAcceptAreNonBlocking) {
  const std::vector<Message> msgs = make_messages(1, {4096 + 17});
  if (is_peer()) {
    std::string bytes;
    ASSERT_OK(rv().recv(&bytes));
    net::NetHandle handle{};
    ASSERT_EQ(bytes.size(), handle.size());
    std::memcpy(handle.data(), bytes.data(), handle.size());
    // The driver is not accepting yet: connect must still return at once.
    SendEnd s;
    s.net = net();
    ncclNetDeviceHandle_v7_t* dh = nullptr;
    auto t0 = Clock::now();
    ASSERT_EQ(net()->connect(dev(), handle.data(), &s.comm, &dh), ncclSuccess);
    EXPECT_LT(elapsed_ms(t0), kNonBlockingMs) << "connect blocked";
    ASSERT_OK(rv().send("connect-called"));
    ASSERT_OK(connect_end(net(), dev(), &handle, &s));  // same handle bytes
    ASSERT_OK(send_messages(&s, msgs, 1, space()));
    ASSERT_OK(rv().sync("received"));
    return;
  }
  RecvEnd r;
  net::NetHandle handle{};
  ASSERT_OK(listen_end(net(), dev(), &handle, &r));
  // Nobody is connecting: accept returns 0 with no comm, promptly.
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    ncclResult_t rc = net()->accept(r.listen_comm, &r.comm, &r.dev);
    EXPECT_EQ(rc, ncclSuccess) << rc_name(rc);
    EXPECT_EQ(r.comm, nullptr) << "accept returned a comm with no peer connecting";
    EXPECT_LT(elapsed_ms(t0), kNonBlockingMs) << "accept blocked";
    r.dev = &r.dev_storage;
  }
  ASSERT_OK(rv().send(std::string(reinterpret_cast<const char*>(handle.data()), handle.size())));
  ASSERT_OK(rv().expect("connect-called"));
  ASSERT_OK(accept_end(&r));
  ASSERT_NE(r.dev, nullptr) << "accept cleared the device-handle pointer";
  if (builtin() || expects_bounce()) {
    EXPECT_EQ(r.dev->netDeviceType, NCCL_NET_DEVICE_UNPACK);
    EXPECT_EQ(r.dev->netDeviceVersion, NCCL_NET_DEVICE_UNPACK_VERSION);
    ASSERT_NE(r.unpack(), nullptr) << "the UNPACK device handle must point at an unpackNetDeviceHandle";
    EXPECT_NE(r.unpack()->meta, nullptr);
  }
  ASSERT_OK(recv_messages(&r, msgs, 1, space(), expects_bounce()));
  ASSERT_OK(rv().sync("received"));
}

TEST_P(NetPairTest, TagsAreIgnoredAndPostOrderMatches) {
  // Different sizes and patterns, so a reordered match shows.
  const std::vector<Message> msgs = make_messages(2, {100, 5000, 70000});
  const int send_tags[] = {7, 99, -5};
  const int recv_tags[] = {3000, 2000, 1000};
  if (is_peer()) {
    SendEnd s;
    ASSERT_OK(open_send_end(&s));
    MessageArena arena(space(), msgs, 3);
    Registration mr;
    ASSERT_EQ(mr.reg(net(), s.comm, arena.base(), arena.size(), mem_type()), ncclSuccess);
    void* req[3] = {};
    for (int i = 0; i < 3; ++i) {
      ASSERT_OK(space().fill(arena.at(i), msgs[i].size, msgs[i].seed));
      ASSERT_EQ(post_isend(&s, arena.at(i), msgs[i].size, send_tags[i], mr.get(), &req[i]), ncclSuccess);
    }
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(completed(wait_request(net(), req[i]), "isend"));
    ASSERT_OK(rv().sync("done"));
    return;
  }
  RecvEnd r;
  ASSERT_OK(open_recv_end(&r));
  MessageArena arena(space(), msgs, 3);
  Registration mr;
  ASSERT_EQ(mr.reg(net(), r.comm, arena.base(), arena.size(), mem_type()), ncclSuccess);
  void* req[3] = {};
  uint64_t slot[3] = {};
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(space().fill(arena.at(i), msgs[i].size, fill_seed(i)));
    ASSERT_EQ(post_irecv(&r, arena.at(i), msgs[i].size, recv_tags[i], mr.get(), &req[i], &slot[i]), ncclSuccess);
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(completed(wait_request(net(), req[i]), "irecv"));
    ASSERT_OK(check_received(r, slot[i], arena.at(i), msgs[i], fill_seed(i), expects_bounce(),
                             space(), "recv #" + std::to_string(i)));
    ASSERT_EQ(consume_recv(r, req[i]), ncclSuccess);
  }
  ASSERT_OK(rv().sync("done"));
}

TEST_P(NetPairTest, SeventeenthOutstandingRequestReturns3) {
  std::vector<uint32_t> sizes(17, 1000);
  sizes[16] = 3000;
  const std::vector<Message> msgs = make_messages(3, sizes);
  if (is_peer()) {
    SendEnd s;
    ASSERT_OK(open_send_end(&s));
    MessageArena arena(space(), msgs, 17);
    Registration mr;
    ASSERT_EQ(mr.reg(net(), s.comm, arena.base(), arena.size(), mem_type()), ncclSuccess);
    void* req[17] = {};
    for (int i = 0; i < 17; ++i) ASSERT_OK(space().fill(arena.at(i), msgs[i].size, msgs[i].seed));
    for (int i = 0; i < 16; ++i)
      ASSERT_EQ(post_isend(&s, arena.at(i), msgs[i].size, 0, mr.get(), &req[i]), ncclSuccess) << "isend " << i;
    void* extra = nullptr;
    ncclResult_t rc = net()->isend(s.comm, arena.at(16), msgs[16].size, 0, mr.get(), &extra);
    const bool taken = seventeenth_taken(builtin(), rc, extra, "isend");
    if (taken) req[16] = extra;
    for (int i = 0; i < (taken ? 17 : 16); ++i) ASSERT_TRUE(completed(wait_request(net(), req[i]), "isend"));
    if (!taken) {
      // A slot is free again: the refused message goes now.
      ASSERT_EQ(post_isend(&s, arena.at(16), msgs[16].size, 0, mr.get(), &req[16]), ncclSuccess);
      ASSERT_TRUE(completed(wait_request(net(), req[16]), "isend after the window drained"));
    }
    ASSERT_OK(rv().sync("done"));
    return;
  }
  RecvEnd r;
  ASSERT_OK(open_recv_end(&r));
  MessageArena arena(space(), msgs, 17);
  Registration mr;
  ASSERT_EQ(mr.reg(net(), r.comm, arena.base(), arena.size(), mem_type()), ncclSuccess);
  void* req[17] = {};
  uint64_t slot[17] = {};
  for (int i = 0; i < 17; ++i) ASSERT_OK(space().fill(arena.at(i), msgs[i].size, fill_seed(i)));
  for (int i = 0; i < 16; ++i)
    ASSERT_EQ(post_irecv(&r, arena.at(i), msgs[i].size, 0, mr.get(), &req[i], &slot[i]), ncclSuccess) << i;
  void* extra = nullptr;
  uint64_t extra_slot = 0;
  ncclResult_t rc = post_irecv(&r, arena.at(16), msgs[16].size, 0, mr.get(), &extra, &extra_slot, /*retry_ms=*/0);
  const bool taken = seventeenth_taken(builtin(), rc, extra, "irecv");
  if (taken) {
    req[16] = extra;
    slot[16] = extra_slot;
  }
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(completed(wait_request(net(), req[i]), "irecv"));
    ASSERT_OK(check_received(r, slot[i], arena.at(i), msgs[i], fill_seed(i), expects_bounce(),
                             space(), "recv #" + std::to_string(i)));
    ASSERT_EQ(consume_recv(r, req[i]), ncclSuccess);
  }
  if (!taken) {
    ASSERT_EQ(post_irecv(&r, arena.at(16), msgs[16].size, 0, mr.get(), &req[16], &slot[16]), ncclSuccess);
  }
  ASSERT_TRUE(completed(wait_request(net(), req[16]), "the 17th irecv"));
  ASSERT_OK(check_received(r, slot[16], arena.at(16), msgs[16], fill_seed(16), expects_bounce(),
                           space(), "recv #16"));
  ASSERT_EQ(consume_recv(r, req[16]), ncclSuccess);
  ASSERT_OK(rv().sync("done"));
}

TEST_P(NetPairTest, OnlyTheOldestRequestMayBeTested) {
  const std::vector<Message> msgs = make_messages(4, {8192, 8192});
  if (is_peer()) {
    SendEnd s;
    ASSERT_OK(open_send_end(&s));
    MessageArena arena(space(), msgs, 2);
    Registration mr;
    ASSERT_EQ(mr.reg(net(), s.comm, arena.base(), arena.size(), mem_type()), ncclSuccess);
    void* req[2] = {};
    for (int i = 0; i < 2; ++i) {
      ASSERT_OK(space().fill(arena.at(i), msgs[i].size, msgs[i].seed));
      ASSERT_EQ(post_isend(&s, arena.at(i), msgs[i].size, 0, mr.get(), &req[i]), ncclSuccess);
    }
    const bool second_done = test_newer_request(net(), req[1], builtin(), "isend");
    for (int i = 0; i < (second_done ? 1 : 2); ++i)
      ASSERT_TRUE(completed(wait_request(net(), req[i]), "isend after a refused test"));
    ASSERT_OK(rv().sync("done"));
    return;
  }
  RecvEnd r;
  ASSERT_OK(open_recv_end(&r));
  MessageArena arena(space(), msgs, 2);
  Registration mr;
  ASSERT_EQ(mr.reg(net(), r.comm, arena.base(), arena.size(), mem_type()), ncclSuccess);
  void* req[2] = {};
  uint64_t slot[2] = {};
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK(space().fill(arena.at(i), msgs[i].size, fill_seed(i)));
    ASSERT_EQ(post_irecv(&r, arena.at(i), msgs[i].size, 0, mr.get(), &req[i], &slot[i]), ncclSuccess);
  }
  const bool second_done = test_newer_request(net(), req[1], builtin(), "irecv");
  for (int i = 0; i < 2; ++i) {
    if (i == 0 || !second_done) {
      ASSERT_TRUE(completed(wait_request(net(), req[i]), "irecv after a refused test"));
    }
    ASSERT_OK(check_received(r, slot[i], arena.at(i), msgs[i], fill_seed(i), expects_bounce(),
                             space(), "recv #" + std::to_string(i)));
    ASSERT_EQ(consume_recv(r, req[i]), ncclSuccess);
  }
  ASSERT_OK(rv().sync("done"));
}

TEST_P(NetPairTest, IrecvWithNOtherThanOneIsRefused) {
  // TCPX's contract (and the built-in's): one buffer per irecv. Other
  // plugins may take up to their own limit: aws-ofi-nccl accepts n = 2..8
  // while it reports maxRecvs 1.
  if (!builtin()) GTEST_SKIP() << "refusing n != 1 is TCPX's rule; " << plugin_under_test() << " may group receives";
  const std::vector<Message> msgs = make_messages(5, {5000});
  if (is_peer()) {
    SendEnd s;
    ASSERT_OK(open_send_end(&s));
    ASSERT_OK(send_messages(&s, msgs, 1, space()));
    ASSERT_OK(rv().sync("done"));
    return;
  }
  RecvEnd r;
  ASSERT_OK(open_recv_end(&r));
  Buffer buf(space(), 2 * 8192);
  Registration mr;
  ASSERT_EQ(mr.reg(net(), r.comm, buf.data(), buf.size(), mem_type()), ncclSuccess);
  void* data[2] = {buf.data(), buf.data() + 8192};
  int sizes[2] = {8192, 8192};
  int tags[2] = {0, 0};
  void* mhs[2] = {mr.get(), mr.get()};
  void* req = nullptr;
  EXPECT_TRUE(refused(net()->irecv(r.comm, 2, data, sizes, tags, mhs, &req), ncclInvalidArgument)) << "n = 2";
  EXPECT_TRUE(refused(net()->irecv(r.comm, 0, data, sizes, tags, mhs, &req), ncclInvalidArgument)) << "n = 0";
  EXPECT_TRUE(refused(net()->irecv(r.comm, -1, data, sizes, tags, mhs, &req), ncclInvalidArgument)) << "n = -1";
  mr.reset();
  // The refusals consumed nothing: the first real irecv still gets message 0.
  ASSERT_OK(recv_messages(&r, msgs, 1, space(), expects_bounce()));
  ASSERT_OK(rv().sync("done"));
}

TEST_P(NetPairTest, SenderSizeWinsOverPostedSize) {
  const std::vector<Message> msgs = make_messages(6, {10000, 4097});
  constexpr int kPosted = 65536;
  if (is_peer()) {
    SendEnd s;
    ASSERT_OK(open_send_end(&s));
    ASSERT_OK(send_messages(&s, msgs, 2, space()));
    ASSERT_OK(rv().sync("done"));
    return;
  }
  RecvEnd r;
  ASSERT_OK(open_recv_end(&r));
  Buffer buf(space(), 2 * kPosted);
  Registration mr;
  ASSERT_EQ(mr.reg(net(), r.comm, buf.data(), buf.size(), mem_type()), ncclSuccess);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE("message " + std::to_string(i) + " of " + std::to_string(msgs[i].size) + " bytes into " +
                 std::to_string(kPosted));
    uint8_t* dst = buf.data() + i * kPosted;
    ASSERT_OK(space().fill(dst, kPosted, fill_seed(i)));
    void* req = nullptr;
    uint64_t slot = 0;
    ASSERT_EQ(post_irecv(&r, dst, kPosted, 0, mr.get(), &req, &slot), ncclSuccess);
    WaitResult w = wait_request(net(), req);
    ASSERT_TRUE(completed(w, "irecv"));
    if (builtin()) {
      EXPECT_EQ(w.sizes, -1) << "the built-in plugin never writes *sizes (like TCPX)";
    }
    if (expects_bounce()) {
      EXPECT_EQ(slot_total_bytes(*r.unpack(), static_cast<int>(slot)), msgs[i].size);
    }
    ASSERT_OK(check_received(r, slot, dst, msgs[i], fill_seed(i), expects_bounce(), space(),
                             "bigger recv"));
    // Past the sender's size the buffer keeps its fill.
    std::vector<uint8_t> got(kPosted);
    std::vector<uint8_t> fill(kPosted);
    ASSERT_OK(space().copy(got.data(), dst, kPosted));
    fill_pattern(fill.data(), kPosted, fill_seed(i));
    EXPECT_EQ(std::memcmp(got.data() + msgs[i].size, fill.data() + msgs[i].size, kPosted - msgs[i].size), 0)
        << "bytes past the sent size were written";
    ASSERT_EQ(consume_recv(r, req), ncclSuccess);
  }
  ASSERT_OK(rv().sync("done"));
}

TEST_P(NetPairTest, IrecvConsumedOnlyInPostOrder) {
  // NCCL treats irecvConsumed as optional; a plugin without it (aws-ofi-nccl)
  // has nothing to order. Both halves load the same plugin, so both skip.
  if (net()->irecvConsumed == nullptr)
    GTEST_SKIP() << plugin_under_test() << " has no irecvConsumed (optional in NCCL): nothing to order";
  const std::vector<Message> msgs = make_messages(7, {20000, 30000});
  if (is_peer()) {
    SendEnd s;
    ASSERT_OK(open_send_end(&s));
    ASSERT_OK(rv().expect("posted"));
    ASSERT_OK(send_messages(&s, msgs, 2, space()));
    ASSERT_OK(rv().sync("done"));
    return;
  }
  RecvEnd r;
  ASSERT_OK(open_recv_end(&r));
  MessageArena arena(space(), msgs, 2);
  Registration mr;
  ASSERT_EQ(mr.reg(net(), r.comm, arena.base(), arena.size(), mem_type()), ncclSuccess);
  void* req[2] = {};
  uint64_t slot[2] = {};
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK(space().fill(arena.at(i), msgs[i].size, fill_seed(i)));
    ASSERT_EQ(post_irecv(&r, arena.at(i), msgs[i].size, 0, mr.get(), &req[i], &slot[i]), ncclSuccess);
  }
  // Nothing was sent yet, so nothing can be done: consuming is premature.
  EXPECT_TRUE(refused(net()->irecvConsumed(r.comm, 1, req[0]), ncclInvalidUsage)) << "consume before test said done";
  ASSERT_OK(rv().send("posted"));
  // A done-but-unconsumed receive no longer blocks testing the next one
  // (TCPX moves on once the oldest finished transmitting).
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(completed(wait_request(net(), req[i]), "irecv"));
    ASSERT_OK(check_received(r, slot[i], arena.at(i), msgs[i], fill_seed(i), expects_bounce(),
                             space(), "recv #" + std::to_string(i)));
  }
  EXPECT_TRUE(refused(net()->irecvConsumed(r.comm, 1, req[1]), ncclInvalidUsage)) << "consume of the newer recv first";
  ASSERT_EQ(consume_recv(r, req[0]), ncclSuccess);
  ASSERT_EQ(consume_recv(r, req[1]), ncclSuccess);
  ASSERT_OK(rv().sync("done"));
}

TEST_P(NetPairTest, RegMrCudaNeeds4096ByteAlignment) {
  // The check is the built-in's: a foreign plugin may need real device memory
  // to register CUDA type at all.
  TCPX_SKIP_UNLESS_BUILTIN("CUDA-type regMr alignment refusal (4) on host memory");
  Buffer buf(space(), 3 * 4096);
  auto check = [&](void* comm) {
    void* mh = nullptr;
    EXPECT_EQ(net()->regMr(comm, buf.data() + 1, 4096, NCCL_PTR_CUDA, &mh), ncclInvalidArgument) << "offset 1";
    EXPECT_EQ(net()->regMr(comm, buf.data() + 2048, 4096, NCCL_PTR_CUDA, &mh), ncclInvalidArgument) << "offset 2048";
  };
  if (is_peer()) {
    SendEnd s;
    ASSERT_OK(open_send_end(&s));
    check(s.comm);
    ASSERT_OK(rv().sync("done"));
    return;
  }
  RecvEnd r;
  ASSERT_OK(open_recv_end(&r));
  check(r.comm);
  ASSERT_OK(rv().sync("done"));
}

}  // namespace
}  // namespace tcpx::conformance
