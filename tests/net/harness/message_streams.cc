#include "harness/message_streams.h"

#include <algorithm>
#include <chrono>

#include "harness/unpack_check.h"

namespace tcpx::conformance {
namespace {

constexpr size_t kMaxOffset = 61;  // < 64, prime so offsets vary per message

Status from_assertion(const ::testing::AssertionResult& r) {
  if (r) return Status::Ok();
  return ProtocolError(r.message());
}

}  // namespace

std::vector<Message> make_messages(uint64_t stream, const std::vector<uint32_t>& sizes) {
  std::vector<Message> out;
  for (size_t i = 0; i < sizes.size(); ++i) out.push_back({sizes[i], message_seed(stream, i)});
  return out;
}

MessageArena::MessageArena(MemorySpace& space, const std::vector<Message>& msgs, int window) : window_(window) {
  size_t largest = 0;
  for (const auto& m : msgs) largest = std::max<size_t>(largest, m.size);
  stride_ = (largest + kMaxOffset + 4095) / 4096 * 4096;
  buf_ = std::make_unique<Buffer>(space, stride_ * window);
}

uint8_t* MessageArena::at(size_t index) const {
  return buf_->data() + (index % window_) * stride_ + (index * 13) % kMaxOffset;
}

SendStream::SendStream(SendEnd* end, std::vector<Message> msgs, int window, MemorySpace& space)
    : end_(end), msgs_(std::move(msgs)), window_(window), space_(space), arena_(space, msgs_, window) {}

Status SendStream::init() {
  if (arena_.base() == nullptr) return TransportError("cannot allocate the send arena");
  ncclResult_t r = mr_.reg(end_->net, end_->comm, arena_.base(), arena_.size(), mem_type_of(space_));
  if (r != ncclSuccess) return TransportError("regMr (send arena) returned " + rc_name(r));
  return Status::Ok();
}

Status SendStream::step() {
  while (next_ < msgs_.size() && inflight_.size() < static_cast<size_t>(window_)) {
    const Message& m = msgs_[next_];
    uint8_t* p = arena_.at(next_);
    TCPX_RETURN_IF_ERROR(space_.fill(p, m.size, m.seed));
    void* req = nullptr;
    ncclResult_t r = end_->net->isend(end_->comm, p, static_cast<int>(m.size), static_cast<int>(next_),
                                      mr_.get(), &req);
    if (r != ncclSuccess) return TransportError("isend #" + std::to_string(next_) + " returned " + rc_name(r));
    if (req == nullptr) break;  // NCCL's "not now": post it again on the next step
    inflight_.emplace_back(req, next_++);
  }
  if (inflight_.empty()) return Status::Ok();
  int done = 0;
  ncclResult_t r = end_->net->test(inflight_.front().first, &done, nullptr);
  if (r != ncclSuccess)
    return TransportError("test(isend #" + std::to_string(inflight_.front().second) + ") returned " + rc_name(r));
  if (done) {
    inflight_.pop_front();
    ++completed_;
  }
  return Status::Ok();
}

RecvStream::RecvStream(RecvEnd* end, std::vector<Message> msgs, int window, MemorySpace& space, bool expect_bounce)
    : end_(end),
      msgs_(std::move(msgs)),
      window_(window),
      space_(space),
      expect_bounce_(expect_bounce),
      arena_(space, msgs_, window) {}

Status RecvStream::init() {
  if (arena_.base() == nullptr) return TransportError("cannot allocate the receive arena");
  ncclResult_t r = mr_.reg(end_->net, end_->comm, arena_.base(), arena_.size(), mem_type_of(space_));
  if (r != ncclSuccess) return TransportError("regMr (recv arena) returned " + rc_name(r));
  if (expect_bounce_ && end_->unpack() == nullptr)
    return ProtocolError("bounce mode, but accept's device handle is not an UNPACK handle with a pointer");
  return Status::Ok();
}

Status RecvStream::step() {
  while (next_ < msgs_.size() && inflight_.size() < static_cast<size_t>(window_)) {
    const Message& m = msgs_[next_];
    uint8_t* p = arena_.at(next_);
    TCPX_RETURN_IF_ERROR(space_.fill(p, m.size, fill_seed(next_)));
    void* data = p;
    int size = static_cast<int>(m.size);
    int tag = static_cast<int>(next_);
    void* mh = mr_.get();
    void* req = nullptr;
    ncclResult_t r = end_->net->irecv(end_->comm, 1, &data, &size, &tag, &mh, &req);
    if (r != ncclSuccess) return TransportError("irecv #" + std::to_string(next_) + " returned " + rc_name(r));
    if (req == nullptr) break;  // NCCL's "not now": post it again on the next step
    inflight_.push_back({req, next_++, end_->posted++ % NET_UNPACK_MAX_SLICES});
  }
  if (inflight_.empty()) return Status::Ok();
  int done = 0;
  ncclResult_t r = end_->net->test(inflight_.front().request, &done, nullptr);
  if (r != ncclSuccess)
    return TransportError("test(irecv #" + std::to_string(inflight_.front().index) + ") returned " + rc_name(r));
  if (!done) return Status::Ok();
  Posted p = inflight_.front();
  inflight_.pop_front();
  TCPX_RETURN_IF_ERROR(finish(p.request, p.index, p.slot));
  ++completed_;
  return Status::Ok();
}

Status check_received(const RecvEnd& end, uint64_t slot, uint8_t* dst, const Message& m, uint64_t fill,
                      bool expect_bounce, MemorySpace& space, const std::string& what) {
  const unpackNetDeviceHandle* h = end.unpack();
  if (expect_bounce) {
    if (h == nullptr) return ProtocolError(what + ": bounce mode but no UNPACK device handle");
    TCPX_RETURN_IF_ERROR(
        from_assertion(space.has_pattern(dst, m.size, fill, what + ": destination must be untouched before unpack")));
    TCPX_RETURN_IF_ERROR(
        from_assertion(slot_metadata_valid(*h, static_cast<int>(slot), m.size, space.is_host())));
    TCPX_RETURN_IF_ERROR(apply_slot(*h, static_cast<int>(slot), dst, space));
  } else if (h != nullptr && h->meta != nullptr && h->meta->cnt[slot] != 0) {
    return ProtocolError(what + ": a direct host receive must have cnt 0, slot " + std::to_string(slot) + " has " +
                         std::to_string(h->meta->cnt[slot]));
  }
  return from_assertion(space.has_pattern(dst, m.size, m.seed, what));
}

Status RecvStream::finish(void* request, size_t index, uint64_t slot) {
  const Message& m = msgs_[index];
  std::string what = "recv #" + std::to_string(index) + " (" + std::to_string(m.size) + " bytes)";
  TCPX_RETURN_IF_ERROR(check_received(*end_, slot, arena_.at(index), m, fill_seed(index), expect_bounce_, space_,
                                      what));
  ncclResult_t r = consume_recv(*end_, request);
  if (r != ncclSuccess) return TransportError("irecvConsumed(" + what + ") returned " + rc_name(r));
  return Status::Ok();
}

Status drive_streams(const std::vector<SendStream*>& sends, const std::vector<RecvStream*>& recvs,
                     int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  Backoff backoff;
  size_t last_progress = 0;
  for (;;) {
    bool all = true;
    size_t progress = 0;
    for (auto* s : sends) {
      TCPX_RETURN_IF_ERROR(s->step());
      all = all && s->finished();
      progress += s->completed();
    }
    for (auto* r : recvs) {
      TCPX_RETURN_IF_ERROR(r->step());
      all = all && r->finished();
      progress += r->completed();
    }
    if (all) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) return TimedOut("streams did not finish within the deadline");
    if (progress != last_progress) backoff.reset();
    last_progress = progress;
    backoff.pause();
  }
}

Status send_messages(SendEnd* end, const std::vector<Message>& msgs, int window, MemorySpace& space,
                     int timeout_ms) {
  SendStream s(end, msgs, window, space);
  TCPX_RETURN_IF_ERROR(s.init());
  return drive_streams({&s}, {}, timeout_ms);
}

Status recv_messages(RecvEnd* end, const std::vector<Message>& msgs, int window, MemorySpace& space,
                     bool expect_bounce, int timeout_ms) {
  RecvStream r(end, msgs, window, space, expect_bounce);
  TCPX_RETURN_IF_ERROR(r.init());
  return drive_streams({}, {&r}, timeout_ms);
}

}  // namespace tcpx::conformance
