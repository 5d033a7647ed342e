// OwedReplies: per connection, our requests (send, write, read) whose reply
// the peer still owes, and how many of those have left this host.
//
// Why: a request posted while others are on the wire may wait for the next
// pass instead of costing a send() of its own (Progress::submit), so a
// window of small transfers leaves in a few syscalls instead of one each.
// That is safe only while a reply is sure to come and trigger that pass:
//  - a one-sided request (write, read) is answered by the target's progress
//    path, whatever its application does;
//  - a send is answered when the peer's application posts a receive for it;
//    the peer matches sends in order, so a later send can never be what the
//    peer waits for before it receives an earlier one. A write or read could
//    be (a peer that awaits a write's notification before it receives), so
//    one-sided requests wait only behind one-sided replies.
// Counts, not lists: a reply always answers a request that left, and
// "left" is learnt when the write buffer drains (everything queued is then
// on the wire), so the counts stay at or below the truth.
#ifndef TCPX_ENGINE_OWED_REPLIES_H_
#define TCPX_ENGINE_OWED_REPLIES_H_

#include <cstdint>

namespace tcpx::engine {

class OwedReplies {
 public:
  // A request was queued (its op now waits for the reply).
  void queued(bool one_sided) {
    ++queued_;
    if (one_sided) ++queued_one_sided_;
  }
  // Its reply came, or its op ended without one (the connection failed).
  void answered(bool one_sided) {
    dec(&queued_);
    dec(&sent_);
    if (one_sided) {
      dec(&queued_one_sided_);
      dec(&sent_one_sided_);
    }
  }
  // The control connection's write buffer drained: every request queued so
  // far has left.
  void all_sent() {
    sent_ = queued_;
    sent_one_sided_ = queued_one_sided_;
  }
  // Whether a new request of this kind may wait for a reply to arrive.
  bool reply_on_the_way(bool one_sided) const { return (one_sided ? sent_one_sided_ : sent_) > 0; }

 private:
  static void dec(uint64_t* v) {
    if (*v > 0) --*v;
  }
  uint64_t queued_ = 0, queued_one_sided_ = 0;
  uint64_t sent_ = 0, sent_one_sided_ = 0;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_OWED_REPLIES_H_
