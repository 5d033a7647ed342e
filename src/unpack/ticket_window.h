// TicketWindow: which of the unpacker's recent tickets their owners have not
// collected yet (a query that reported the job final, or a release).
//
// Why: libtcpx_cuda.so keeps a job's result in a ring of
// TCPX_CUDA_UNPACK_RING records indexed by ticket, and reuses a record as soon
// as its job has finished. A job that finished but whose owner had not
// queried it yet was then forgotten: 256 submits later its owner got
// UNKNOWN_TICKET and failed its connection. That takes only about a dozen
// connections receiving into GPU memory in one pass (16 receives per comm,
// 2 comms each, plus inline copies). The window refuses (BUSY) a submit that
// would reuse the record of an uncollected ticket, so a result is kept until
// its owner has seen it.
//
// Tickets are issued consecutively (both CUDA libraries do); the window
// spans the oldest uncollected ticket to the newest, at most kSize of them.
// Not thread-safe: the unpacker serializes its calls.
#ifndef TCPX_UNPACK_TICKET_WINDOW_H_
#define TCPX_UNPACK_TICKET_WINDOW_H_

#include <array>
#include <cstddef>
#include <cstdint>

namespace tcpx::unpack {

template <size_t kSize>
class TicketWindow {
 public:
  // Whether one more ticket fits: the next one would not reuse the record
  // of an uncollected one.
  bool has_room() const { return count_ < kSize; }
  // A submit issued t (the next consecutive ticket, or the first).
  void issued(uint64_t t) {
    if (count_ == 0) {
      first_ = t;
    } else if (t != first_ + count_) {
      // Not consecutive (cannot happen with our libraries): start over
      // rather than guess which records t shares.
      count_ = 0;
      first_ = t;
    }
    open_[(first_ + count_) % kSize] = true;
    ++count_;
  }
  // t's owner saw its final result, or gave it up. Unknown tickets are ignored.
  void collected(uint64_t t) {
    if (t < first_ || t - first_ >= count_) return;
    open_[t % kSize] = false;
    while (count_ > 0 && !open_[first_ % kSize]) {
      ++first_;
      --count_;
    }
  }
  size_t open_span() const { return count_; }

 private:
  std::array<bool, kSize> open_{};
  uint64_t first_ = 0;
  size_t count_ = 0;
};

}  // namespace tcpx::unpack

#endif  // TCPX_UNPACK_TICKET_WINDOW_H_
