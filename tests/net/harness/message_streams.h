// Message streams: a sequence of messages sent or received on one comm with a
// window of outstanding requests, advanced one non-blocking step at a time so
// one thread can drive many comms (in both directions) without deadlock.
// Only the oldest request of a comm is ever tested, as the contract requires.
#ifndef TCPX_TESTS_NET_HARNESS_MESSAGE_STREAMS_H_
#define TCPX_TESTS_NET_HARNESS_MESSAGE_STREAMS_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "harness/memory_space.h"
#include "harness/patterns.h"
#include "harness/plugin_ends.h"
#include "tcpx/status.h"

namespace tcpx::conformance {

struct Message {
  uint32_t size;
  uint64_t seed;  // content pattern; both halves derive it the same way
};

// Both sides build the same list from (stream id, sizes).
std::vector<Message> make_messages(uint64_t stream, const std::vector<uint32_t>& sizes);

// Messages sit at a small, varying offset inside one registered allocation:
// the contract says "register whole allocations and send/recv at any offset".
class MessageArena {
 public:
  MessageArena(MemorySpace& space, const std::vector<Message>& msgs, int window);
  uint8_t* at(size_t index) const;
  uint8_t* base() const { return buf_->data(); }
  size_t size() const { return buf_->size(); }

 private:
  size_t stride_;
  int window_;
  std::unique_ptr<Buffer> buf_;
};

class SendStream {
 public:
  SendStream(SendEnd* end, std::vector<Message> msgs, int window, MemorySpace& space);
  ~SendStream() { mr_.reset(); }  // before the end closes
  Status init();
  // Posts while the window has room, then tests the oldest request once.
  Status step();
  bool finished() const { return completed_ == msgs_.size(); }
  size_t completed() const { return completed_; }

 private:
  SendEnd* end_;
  std::vector<Message> msgs_;
  int window_;
  MemorySpace& space_;
  MessageArena arena_;
  Registration mr_;
  std::deque<std::pair<void*, size_t>> inflight_;  // (request, message index)
  size_t next_ = 0;
  size_t completed_ = 0;
};

class RecvStream {
 public:
  // expect_bounce: every non-empty receive must arrive through loadMeta (the
  // destination stays untouched until the test's own scatter).
  RecvStream(RecvEnd* end, std::vector<Message> msgs, int window, MemorySpace& space, bool expect_bounce);
  ~RecvStream() { mr_.reset(); }
  Status init();
  // Posts while the window has room, then tests the oldest once; a finished
  // receive is verified, unpacked if bounced, and consumed.
  Status step();
  bool finished() const { return completed_ == msgs_.size(); }
  size_t completed() const { return completed_; }

 private:
  Status finish(void* request, size_t index, uint64_t slot);
  RecvEnd* end_;
  std::vector<Message> msgs_;
  int window_;
  MemorySpace& space_;
  bool expect_bounce_;
  MessageArena arena_;
  Registration mr_;
  struct Posted {
    void* request;
    size_t index;
    uint64_t slot;
  };
  std::deque<Posted> inflight_;
  size_t next_ = 0;
  size_t completed_ = 0;
};

// Checks a receive test() reported done, before irecvConsumed: with
// expect_bounce the destination must still hold its fill and the slot's
// loadMeta must be valid, and the test's own scatter is applied; without it a
// published slot must say cnt 0. Then the data must be the sent pattern.
Status check_received(const RecvEnd& end, uint64_t slot, uint8_t* dst, const Message& m, uint64_t fill,
                      bool expect_bounce, MemorySpace& space, const std::string& what);

// NCCL_PTR_HOST or NCCL_PTR_CUDA.
inline int mem_type_of(const MemorySpace& space) { return space.is_host() ? 0x1 : 0x2; }

// Steps every stream round-robin until all finish, one fails, or timeout_ms.
Status drive_streams(const std::vector<SendStream*>& sends, const std::vector<RecvStream*>& recvs,
                     int timeout_ms);

// One stream in one direction, driven to the end.
Status send_messages(SendEnd* end, const std::vector<Message>& msgs, int window, MemorySpace& space,
                     int timeout_ms = kPluginTimeoutMs);
Status recv_messages(RecvEnd* end, const std::vector<Message>& msgs, int window, MemorySpace& space,
                     bool expect_bounce, int timeout_ms = kPluginTimeoutMs);

}  // namespace tcpx::conformance

#endif  // TCPX_TESTS_NET_HARNESS_MESSAGE_STREAMS_H_
