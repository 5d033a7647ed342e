// The layer's own pieces without a network: GRANT_REQUEST / GRANT_REPLY
// round trips, every truncation and seeded garbage refused by the decoders,
// and the grant table's range arithmetic at its edges.
#include <gtest/gtest.h>

#include <random>

#include "uccl_p2p/grant_table.h"
#include "uccl_p2p/messages.h"

namespace tcpx::uccl_p2p {
namespace {

GrantRequest sample_request() {
  GrantRequest r;
  r.request_id = 0x0102030405060708ull;
  r.first = kMaxBatch;
  for (uint32_t i = 0; i < 3; ++i) {
    GrantRef ref;
    ref.grant_id = 10 + i;
    ref.secret.fill(static_cast<uint8_t>(i + 1));
    ref.addr = 0xdeadbeef00ull + i;
    ref.size = 4096 * (i + 1);
    r.refs.push_back(ref);
  }
  return r;
}

TEST(UcclP2pWire, RequestRoundTrip) {
  GrantRequest in = sample_request(), out;
  ASSERT_TRUE(decode(encode(in), &out).ok());
  EXPECT_EQ(out.request_id, in.request_id);
  EXPECT_EQ(out.first, in.first);
  ASSERT_EQ(out.refs.size(), 3u);
  EXPECT_EQ(out.refs[2].grant_id, 12u);
  EXPECT_EQ(out.refs[2].addr, in.refs[2].addr);
  EXPECT_EQ(out.refs[2].size, in.refs[2].size);
  EXPECT_EQ(out.refs[2].secret, in.refs[2].secret);
}

TEST(UcclP2pWire, ReplyRoundTripAndRefusal) {
  GrantReply in, out;
  in.request_id = 7;
  in.items.resize(2);
  in.items[1].bytes[63] = 0x5a;
  ASSERT_TRUE(decode(encode(in), &out).ok());
  ASSERT_EQ(out.items.size(), 2u);
  EXPECT_EQ(out.items[1].bytes[63], 0x5a);
  GrantReply no;
  no.code = StatusCode::kNotFound;
  no.bad_index = 5;
  no.reason = std::string(2000, 'x');  // clipped, not refused
  ASSERT_TRUE(decode(encode(no), &out).ok());
  EXPECT_EQ(out.code, StatusCode::kNotFound);
  EXPECT_EQ(out.bad_index, 5u);
  EXPECT_EQ(out.reason.size(), 512u);
}

TEST(UcclP2pWire, EveryTruncationIsRefused) {
  auto req = encode(sample_request());
  GrantReply rep_in;
  rep_in.items.resize(3);
  auto rep = encode(rep_in);
  for (size_t n = 0; n < req.size(); ++n) {
    GrantRequest r;
    EXPECT_FALSE(decode(std::vector<uint8_t>(req.begin(), req.begin() + n), &r).ok()) << n;
  }
  for (size_t n = 0; n < rep.size(); ++n) {
    GrantReply r;
    EXPECT_FALSE(decode(std::vector<uint8_t>(rep.begin(), rep.begin() + n), &r).ok()) << n;
  }
  req.push_back(0);  // one byte too many
  GrantRequest r;
  EXPECT_FALSE(decode(req, &r).ok());
  GrantReply wrong_type;
  EXPECT_FALSE(decode(encode(sample_request()), &wrong_type).ok());
}

TEST(UcclP2pWire, SeededGarbageNeverCrashes) {
  std::mt19937 rng(1234);
  auto valid = encode(sample_request());
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> b = valid;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    if (rng() % 3 == 0) b.resize(rng() % (b.size() + 1));
    GrantRequest r;
    GrantReply p;
    MessageType t;
    (void)peek_type(b, &t);
    (void)decode(b, &r);
    (void)decode(b, &p);
  }
}

TEST(UcclP2pGrants, RangeEdges) {
  GrantTable g;
  ::FifoItem item;
  ASSERT_TRUE(g.add(/*owner=*/1, /*mr=*/9, 1000, 100, &item).ok());
  GrantRef ref;
  ASSERT_TRUE(decode_token(item, &ref).ok());
  auto check = [&](uint64_t addr, uint32_t size) {
    GrantRef r = ref;
    r.addr = addr;
    r.size = size;
    GrantedRange out;
    return g.check(r, &out).ok();
  };
  EXPECT_TRUE(check(1000, 100));
  EXPECT_TRUE(check(1099, 1));
  EXPECT_FALSE(check(1099, 2));
  EXPECT_FALSE(check(999, 1));
  EXPECT_FALSE(check(1100, 1));
  EXPECT_FALSE(check(1000, 0));
  EXPECT_FALSE(check(UINT64_MAX, 1));
  EXPECT_FALSE(check(1050, UINT32_MAX));
  g.revoke(1);
  EXPECT_FALSE(check(1000, 100));
}

}  // namespace
}  // namespace tcpx::uccl_p2p
