// Data between two processes: edge and random sizes in both directions at
// once, then several comms each way with full windows, contents checked byte
// for byte against seeded patterns.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "harness/conformance_fixture.h"
#include "harness/message_streams.h"

namespace tcpx::conformance {
namespace {

constexpr int kTransferTimeoutMs = 60000;

// The driver picks the seed (TCPX_CONFORMANCE_SEED to replay one) and hands
// it to the peer, so both derive the same sizes.
Status agree_on_seed(bool is_peer, RendezvousConnection& rv, uint64_t* seed) {
  if (is_peer) {
    std::string s;
    TCPX_RETURN_IF_ERROR(rv.recv(&s));
    *seed = std::stoull(s);
    return Status::Ok();
  }
  const char* env = std::getenv("TCPX_CONFORMANCE_SEED");
  *seed = env != nullptr ? std::strtoull(env, nullptr, 10)
                         : static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  return rv.send(std::to_string(*seed));
}

// Log-uniform in [1, max]: most sizes small, some near the 4 MiB chunk limit.
std::vector<uint32_t> random_sizes(uint64_t seed, int count, uint32_t max) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> exp(0.0, std::log2(static_cast<double>(max)));
  std::vector<uint32_t> out;
  for (int i = 0; i < count; ++i) out.push_back(static_cast<uint32_t>(std::exp2(exp(rng))));
  return out;
}

std::string join(const std::vector<uint32_t>& v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : " ") + std::to_string(x);
  return s;
}

TEST_P(NetPairTest, EdgeAndRandomSizesBothDirections) {
  uint64_t seed = 0;
  ASSERT_OK(agree_on_seed(is_peer(), rv(), &seed));
  std::vector<uint32_t> sizes = {0, 1, 4095, 4096, 4097, 64u << 10, 1u << 20, 4u << 20};
  for (auto s : random_sizes(seed, 20, 4u << 20)) sizes.push_back(s);
  if (!is_peer()) std::printf("[ seed     ] %llu (TCPX_CONFORMANCE_SEED=%llu replays); sizes: %s\n",
                              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
                              join(sizes).c_str());
  // Stream 20 flows peer -> driver, stream 21 driver -> peer, at the same time.
  const auto to_driver = make_messages(20, sizes);
  const auto to_peer = make_messages(21, sizes);
  RecvEnd r;
  SendEnd s;
  if (is_peer()) {
    ASSERT_OK(open_send_end(&s));
    ASSERT_OK(open_recv_end(&r));
  } else {
    ASSERT_OK(open_recv_end(&r));
    ASSERT_OK(open_send_end(&s));
  }
  SendStream out(&s, is_peer() ? to_driver : to_peer, 8, space());
  RecvStream in(&r, is_peer() ? to_peer : to_driver, 8, space(), expects_bounce());
  ASSERT_OK(out.init());
  ASSERT_OK(in.init());
  ASSERT_OK(drive_streams({&out}, {&in}, kTransferTimeoutMs));
  ASSERT_OK(rv().sync("done"));
}

TEST_P(NetPairTest, FourCommsEachWayWithWindowsOfEight) {
  constexpr int kComms = 4;
  constexpr int kMessages = 40;
  uint64_t seed = 0;
  ASSERT_OK(agree_on_seed(is_peer(), rv(), &seed));
  if (!is_peer()) std::printf("[ seed     ] %llu\n", static_cast<unsigned long long>(seed));
  RecvEnd r[kComms];
  SendEnd s[kComms];
  for (int i = 0; i < kComms; ++i) {
    if (is_peer()) {
      ASSERT_OK(open_send_end(&s[i]));
      ASSERT_OK(open_recv_end(&r[i]));
    } else {
      ASSERT_OK(open_recv_end(&r[i]));
      ASSERT_OK(open_send_end(&s[i]));
    }
  }
  // Stream ids: 100 + comm for peer -> driver, 200 + comm for driver -> peer.
  auto stream_msgs = [&](int id) { return make_messages(id, random_sizes(seed + id, kMessages, 256u << 10)); };
  std::vector<std::unique_ptr<SendStream>> outs;
  std::vector<std::unique_ptr<RecvStream>> ins;
  std::vector<SendStream*> out_ptrs;
  std::vector<RecvStream*> in_ptrs;
  for (int i = 0; i < kComms; ++i) {
    int out_id = (is_peer() ? 100 : 200) + i;
    int in_id = (is_peer() ? 200 : 100) + i;
    outs.push_back(std::make_unique<SendStream>(&s[i], stream_msgs(out_id), 8, space()));
    ins.push_back(std::make_unique<RecvStream>(&r[i], stream_msgs(in_id), 8, space(), expects_bounce()));
    ASSERT_OK(outs.back()->init());
    ASSERT_OK(ins.back()->init());
    out_ptrs.push_back(outs.back().get());
    in_ptrs.push_back(ins.back().get());
  }
  ASSERT_OK(drive_streams(out_ptrs, in_ptrs, kTransferTimeoutMs));
  outs.clear();
  ins.clear();
  ASSERT_OK(rv().sync("done"));
}

}  // namespace
}  // namespace tcpx::conformance
