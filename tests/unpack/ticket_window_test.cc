// TicketWindow (src/unpack/ticket_window.h): which tickets of the CUDA
// unpacker are still owed to their owners. Pure bookkeeping, so it runs in
// every tree, sanitizers included, without CUDA.
#include <gtest/gtest.h>

#include <cstdint>

#include "unpack/ticket_window.h"

using tcpx::unpack::TicketWindow;

TEST(TicketWindow, FullWhenTheNextTicketWouldReuseAnUncollectedRecord) {
  TicketWindow<4> w;
  for (uint64_t t = 10; t < 14; ++t) {
    ASSERT_TRUE(w.has_room()) << t;
    w.issued(t);
  }
  EXPECT_FALSE(w.has_room());
  // Collecting newer tickets frees nothing: ticket 14 would reuse 10's record.
  w.collected(11);
  w.collected(13);
  EXPECT_FALSE(w.has_room());
  EXPECT_EQ(w.open_span(), 4u);
  // The oldest goes, and with it the collected ones right behind it.
  w.collected(10);
  EXPECT_EQ(w.open_span(), 2u);  // 12 (open) and 13 (collected, behind it)
  EXPECT_TRUE(w.has_room());
  w.issued(14);
  w.issued(15);
  EXPECT_FALSE(w.has_room());
  w.collected(12);
  EXPECT_EQ(w.open_span(), 2u);  // 14, 15
}

TEST(TicketWindow, UnknownAndRepeatedCollectsChangeNothing) {
  TicketWindow<4> w;
  w.collected(5);  // nothing issued yet
  EXPECT_EQ(w.open_span(), 0u);
  w.issued(0);
  w.issued(1);
  w.collected(7);  // never issued
  w.collected(1);
  w.collected(1);  // twice
  EXPECT_EQ(w.open_span(), 2u);
  w.collected(0);
  EXPECT_EQ(w.open_span(), 0u);
  w.collected(0);  // below the window now
  EXPECT_EQ(w.open_span(), 0u);
  EXPECT_TRUE(w.has_room());
}

TEST(TicketWindow, WrapsAroundTheRingForever) {
  TicketWindow<8> w;
  uint64_t next = 0;
  for (int round = 0; round < 1000; ++round) {
    // Three in flight, collected out of order.
    uint64_t a = next++, b = next++, c = next++;
    w.issued(a);
    w.issued(b);
    w.issued(c);
    w.collected(c);
    w.collected(a);
    EXPECT_EQ(w.open_span(), 2u) << round;
    w.collected(b);
    ASSERT_EQ(w.open_span(), 0u) << round;
  }
}

TEST(TicketWindow, ANonConsecutiveTicketStartsAfresh) {
  TicketWindow<4> w;
  w.issued(1);
  w.issued(2);
  w.issued(9);  // a gap: no guessing which records it shares
  EXPECT_EQ(w.open_span(), 1u);
  w.collected(9);
  EXPECT_EQ(w.open_span(), 0u);
}
