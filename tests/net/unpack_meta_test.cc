// The unpack metadata protocol (docs/design.md section 2): in bounce mode the
// k-th irecv's fragments are listed in netUnpackMeta slot k % 16, the
// destination stays untouched until the caller scatters them, and the slot is
// the caller's until irecvConsumed. Checked with the test's own CPU scatter.
#include <gtest/gtest.h>

#include <vector>

#include "harness/conformance_fixture.h"
#include "harness/message_streams.h"

namespace tcpx::conformance {
namespace {

// 48 receives, so the 16 slots wrap three times; sizes cross the 4 KiB
// fragment boundary, include an empty message and the 4 MiB chunk limit.
std::vector<uint32_t> wrap_sizes() {
  const uint32_t pattern[] = {1, 4095, 4096, 4097, 12345, 0, 65536, 100003, 1u << 20, 777, 8192, 4u << 20};
  std::vector<uint32_t> sizes;
  for (int i = 0; i < 48; ++i) sizes.push_back(pattern[i % 12]);
  return sizes;
}

TEST_P(NetPairTest, BounceMetadataDescribesEveryReceive) {
  if (!expects_bounce()) GTEST_SKIP() << "receives of this mode land directly (no loadMeta)";
  const std::vector<Message> msgs = make_messages(10, wrap_sizes());
  // A window of 4 keeps several slots live at once, so a plugin that reuses
  // the wrong slot or clobbers an unconsumed one is caught.
  if (is_peer()) {
    SendEnd s;
    ASSERT_OK(open_send_end(&s));
    ASSERT_OK(send_messages(&s, msgs, 4, space()));
    ASSERT_OK(rv().sync("done"));
    return;
  }
  RecvEnd r;
  ASSERT_OK(open_recv_end(&r));
  ASSERT_NE(r.unpack(), nullptr);
  ASSERT_OK(recv_messages(&r, msgs, 4, space(), /*expect_bounce=*/true));
  EXPECT_GE(r.posted, 40u);
  ASSERT_OK(rv().sync("done"));
}

TEST_P(NetPairTest, DirectHostReceivesHaveCountZero) {
  if (expects_bounce()) GTEST_SKIP() << "receives of this mode are bounced";
  const std::vector<Message> msgs = make_messages(11, wrap_sizes());
  if (is_peer()) {
    SendEnd s;
    ASSERT_OK(open_send_end(&s));
    ASSERT_OK(send_messages(&s, msgs, 4, space()));
    ASSERT_OK(rv().sync("done"));
    return;
  }
  RecvEnd r;
  ASSERT_OK(open_recv_end(&r));
  // recv_messages checks cnt[slot] == 0 for every receive when a slot table
  // is published, and that the data landed in place.
  ASSERT_OK(recv_messages(&r, msgs, 4, space(), /*expect_bounce=*/false));
  ASSERT_OK(rv().sync("done"));
}

}  // namespace
}  // namespace tcpx::conformance
