// Endpoint transfer calls: each validates its arguments, acquires the memory
// regions it touches (so dereg sees them busy), creates the user-visible
// transfer and posts one op per piece to the progress thread. Nothing here
// blocks except the explicit blocking wrappers, whose one op ends in a
// SyncWait on their stack instead of a transfer (run_blocking).
#include <algorithm>
#include <chrono>
#include <span>

#include "common/cpu_relax.h"
#include "engine/endpoint_impl.h"
#include "engine/fifo_item.h"

namespace tcpx {

Status Endpoint::Impl::post(engine::OpKind kind, ConnId conn, std::span<const IoPiece> pieces, XferId* out,
                            Blocking* blocking) {
  if (out == nullptr) return InvalidArgument("transfer: out is null");
  if (pieces.empty()) return InvalidArgument("transfer: no pieces");
  if (blocking != nullptr && pieces.size() != 1) return Internal("a blocking call has one piece");
  TCPX_RETURN_IF_ERROR(usable(conn));
  bool one_sided = kind == engine::OpKind::kRead || kind == engine::OpKind::kWrite;
  // One piece (the common case) lives on the stack: no allocation per post.
  engine::PostedOp single;
  std::vector<engine::PostedOp> many;
  if (pieces.size() > 1) many.resize(pieces.size());
  std::span<engine::PostedOp> ops = pieces.size() == 1 ? std::span<engine::PostedOp>(&single, 1)
                                                       : std::span<engine::PostedOp>(many);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const IoPiece& p = pieces[i];
    Status s;
    if (p.data == nullptr && p.size > 0) s = InvalidArgument("null buffer");
    if (s.ok() && one_sided) {
      // Catch what the caller can know locally; the target re-validates.
      engine::FifoFields f;
      s = engine::decode_fifo_item(p.remote, &f);
      if (s.ok() && p.size > f.size)
        s = InvalidArgument(std::to_string(p.size) + " bytes requested but the FifoItem advertises " +
                            std::to_string(f.size));
    }
    if (s.ok()) s = mrs.acquire_local(p.mr, p.data, p.size, &ops[i].mr);
    if (!s.ok()) {
      for (size_t j = 0; j < i; ++j) mrs.release(ops[j].mr.id);
      return pieces.size() > 1 ? Status(s.code(), "piece " + std::to_string(i) + ": " + s.message()) : s;
    }
    ops[i].kind = kind;
    ops[i].conn = conn;
    ops[i].piece = i;
    ops[i].data = static_cast<uint8_t*>(p.data);
    ops[i].size = p.size;
    ops[i].remote = p.remote;
  }
  *out = 0;
  if (blocking != nullptr && kind == engine::OpKind::kRecv) {
    // The message may be here already (a ping-pong's answer arrives with
    // the ack our own send waited for): take it without making a transfer,
    // an op and their bookkeeping, as UCX completes a receive that finds its
    // message in the unexpected queue within the call. That bookkeeping was
    // about 300 of the 580 ns such a receive took (8-byte ping-pong, rdtsc
    // marks); one-way p50 4.02-4.23 -> 3.81-4.01 us in alternating runs.
    uint64_t bytes = 0;
    if (progress->receive_now(ops[0], &bytes)) {
      mrs.release(ops[0].mr.id);
      blocking->received_now = bytes;
      return Status::Ok();
    }
  }
  const XferId id = blocking != nullptr ? 0 : xfers.create(pieces.size());
  const auto deadline = cfg.transfer_timeout_ms > 0
                            ? std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.transfer_timeout_ms)
                            : engine::kNoDeadline;
  for (auto& op : ops) {
    op.xfer = id;
    op.sync = blocking != nullptr ? &blocking->done : nullptr;
    op.deadline = deadline;
  }
  progress->submit(ops);
  *out = id;
  return Status::Ok();
}

namespace {

// What a wait waits for (Endpoint::Impl::wait_for). poll(): IN_PROGRESS or
// the final status; changed(): cheaply, whether poll() may say more now;
// sleep(): blocks until final or timeout_ms (< 0: no limit), IN_PROGRESS
// if that passed first.
struct TableEntry {
  engine::TransferTable& xfers;
  XferId id;
  uint64_t finals = 0;
  Status poll(uint64_t* bytes) {
    finals = xfers.finals();  // before the poll: an end after it moves the count
    return xfers.poll(id, bytes);
  }
  bool changed() const { return xfers.finals() != finals; }
  Status sleep(int timeout_ms, uint64_t* bytes) { return xfers.wait(id, timeout_ms, bytes); }
};

struct BlockingEnd {
  engine::SyncWait& done;
  Status poll(uint64_t* bytes) { return done.done() ? done.take(bytes) : engine::TransferTable::in_progress(); }
  bool changed() const { return done.done(); }
  Status sleep(int timeout_ms, uint64_t* bytes) {
    const auto until = timeout_ms < 0 ? std::chrono::steady_clock::time_point::max()
                                      : std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    if (done.sleep_until(until)) return done.take(bytes);
    return Status(StatusCode::kInProgress, "not done after " + std::to_string(timeout_ms) + " ms");
  }
};

}  // namespace

Status Endpoint::Impl::run_blocking(engine::OpKind kind, ConnId conn, const IoPiece& piece, uint64_t* bytes) {
  Blocking b;
  XferId unused = 0;
  TCPX_RETURN_IF_ERROR(post(kind, conn, {&piece, 1}, &unused, &b));
  if (b.received_now) {
    if (bytes != nullptr) *bytes = *b.received_now;
    return Status::Ok();
  }
  BlockingEnd end{b.done};
  return wait_for(end, -1, bytes);
}

Status Endpoint::Impl::wait(XferId id, int timeout_ms, uint64_t* bytes) {
  TableEntry entry{xfers, id};
  return wait_for(entry, timeout_ms, bytes);
}

template <class Ready>
bool Endpoint::Impl::drive_until(Clock::time_point start, Clock::time_point end, Clock::time_point guest_clock,
                                 Ready&& ready, Clock::time_point* ready_at) {
  engine::Progress::Guest guest(progress.get(), guest_clock);
  // The token can be held by the background thread, in the pass it was
  // running when we came (it parks after it, seeing us). After kTokenSpin of
  // refusals we sleep until it is let go rather than spin: on a loaded host
  // that pass may be waiting for a core, maybe ours. Spinning on, a wait of
  // a 64 KiB send window ran out its whole budget behind such a pass about
  // once in three (some 700 refusals each), and the spin policy learnt from
  // it to sleep (3.4 GB/s; 4.2-4.6 so).
  constexpr auto kTokenSpin = std::chrono::microseconds(10);
  Clock::time_point refused_since{};
  for (auto now = start; now < end; now = Clock::now()) {
    const bool sleep_for_token = refused_since != Clock::time_point{} && now - refused_since > kTokenSpin;
    if (progress->try_pass(nullptr, sleep_for_token ? end : Clock::time_point{}, now)) {
      refused_since = {};
    } else {
      if (refused_since == Clock::time_point{}) refused_since = now;
      cpu_relax();
    }
    if (ready()) {
      const auto at = Clock::now();
      guest.done(at);
      if (ready_at != nullptr) *ready_at = at;
      return true;
    }
  }
  return false;
}

template <class Target>
Status Endpoint::Impl::wait_for(Target& target, int timeout_ms, uint64_t* bytes) {
  const auto start = Clock::now();
  Status s = target.poll(bytes);
  if (!s.in_progress()) return s;
  if (timeout_ms == 0) return target.sleep(0, bytes);  // IN_PROGRESS; the transfer stays live
  int spin_us = spin.next_budget_us();
  if (cfg.spin_us > 0) {  // a probe window has this wait spin though the policy sleeps
    const auto probe_us = spin_probe.spin_for(start, !spin.spinning()).count();
    spin_us = std::max(spin_us, static_cast<int>(probe_us));
  }
  if (spin_us > 0) {
    // Drive progress on this thread for up to spin_us: the transfer's last
    // frame is read, and the transfer finished, right here, with no thread
    // wake-up on either side of the hand-off.
    auto spin_end = start + std::chrono::microseconds(spin_us);
    if (timeout_ms >= 0) spin_end = std::min(spin_end, start + std::chrono::milliseconds(timeout_ms));
    Clock::time_point done_at;
    const bool done = drive_until(
        start, spin_end, /*guest_clock=*/start,
        [&] {
          if (target.changed()) s = target.poll(bytes);
          return !s.in_progress();
        },
        &done_at);
    if (done) {
      spin.record(true, done_at - start);
      return s;
    }
  }
  // Sleep; the background thread drives from here on.
  if (spin_us == 0) progress->waiter_sleeps();
  int left = timeout_ms;
  if (timeout_ms > 0) {
    auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    left = static_cast<int>(std::max<long long>(0, timeout_ms - spent));
  }
  s = target.sleep(left, bytes);
  spin.record(spin_us > 0, Clock::now() - start);
  return s;
}

namespace {
IoPiece one(MrId mr, const void* data, size_t size, const FifoItem* remote = nullptr) {
  IoPiece p;
  p.mr = mr;
  p.data = const_cast<void*>(data);
  p.size = size;
  if (remote != nullptr) p.remote = *remote;
  return p;
}
}  // namespace

Status Endpoint::send_async(ConnId conn, MrId mr, const void* data, size_t size, XferId* out) {
  const IoPiece p = one(mr, data, size);
  return impl_->post(engine::OpKind::kSend, conn, {&p, 1}, out);
}

Status Endpoint::recv_async(ConnId conn, MrId mr, void* data, size_t capacity, XferId* out) {
  const IoPiece p = one(mr, data, capacity);
  return impl_->post(engine::OpKind::kRecv, conn, {&p, 1}, out);
}

Status Endpoint::send(ConnId conn, MrId mr, const void* data, size_t size) {
  return impl_->run_blocking(engine::OpKind::kSend, conn, one(mr, data, size), nullptr);
}

Status Endpoint::recv(ConnId conn, MrId mr, void* data, size_t capacity, size_t* received) {
  uint64_t bytes = 0;
  Status s = impl_->run_blocking(engine::OpKind::kRecv, conn, one(mr, data, capacity), &bytes);
  if (received != nullptr) *received = s.ok() ? bytes : 0;
  return s;
}

Status Endpoint::advertise(ConnId conn, MrId mr, const void* addr, size_t len, FifoItem* out) {
  if (out == nullptr) return InvalidArgument("advertise: out is null");
  engine::MrInfo m;
  TCPX_RETURN_IF_ERROR(impl_->mrs.lookup(mr, &m));
  auto p = reinterpret_cast<uintptr_t>(addr);
  if (p < m.base || p - m.base > m.size || len > m.size - (p - m.base))
    return InvalidArgument("advertise: [addr, addr+" + std::to_string(len) + ") is not inside region " +
                           std::to_string(mr));
  engine::FifoFields f;
  f.mr_id = m.id;
  f.mr_token = m.token;
  f.offset = p - m.base;
  f.size = len;
  f.tag = conn;
  *out = engine::encode_fifo_item(f);
  return Status::Ok();
}

Status Endpoint::read_async(ConnId conn, MrId mr, void* dst, size_t size, const FifoItem& remote, XferId* out) {
  const IoPiece p = one(mr, dst, size, &remote);
  return impl_->post(engine::OpKind::kRead, conn, {&p, 1}, out);
}

Status Endpoint::write_async(ConnId conn, MrId mr, const void* src, size_t size, const FifoItem& remote,
                             XferId* out) {
  const IoPiece p = one(mr, src, size, &remote);
  return impl_->post(engine::OpKind::kWrite, conn, {&p, 1}, out);
}

Status Endpoint::readv_async(ConnId conn, const std::vector<IoPiece>& pieces, XferId* out) {
  return impl_->post(engine::OpKind::kRead, conn, pieces, out);
}

Status Endpoint::writev_async(ConnId conn, const std::vector<IoPiece>& pieces, XferId* out) {
  return impl_->post(engine::OpKind::kWrite, conn, pieces, out);
}

Status Endpoint::read(ConnId conn, MrId mr, void* dst, size_t size, const FifoItem& remote) {
  return impl_->run_blocking(engine::OpKind::kRead, conn, one(mr, dst, size, &remote), nullptr);
}

Status Endpoint::write(ConnId conn, MrId mr, const void* src, size_t size, const FifoItem& remote) {
  return impl_->run_blocking(engine::OpKind::kWrite, conn, one(mr, src, size, &remote), nullptr);
}

Status Endpoint::poll_async(XferId xfer, uint64_t* bytes) {
  Status s = impl_->xfers.poll(xfer, bytes);
  if (!s.in_progress()) return s;
  // A caller polling in its own loop drives too, when nobody else is.
  if (!impl_->progress->try_pass()) return s;
  return impl_->xfers.poll(xfer, bytes);
}

Status Endpoint::wait(XferId xfer, int timeout_ms, uint64_t* bytes) { return impl_->wait(xfer, timeout_ms, bytes); }

Status Endpoint::progress(bool* moved) {
  bool m = false;
  impl_->progress->try_pass(&m);
  if (moved != nullptr) *moved = m;
  return Status::Ok();
}

bool Endpoint::drive_until(const std::function<bool()>& ready) {
  using Clock = Impl::Clock;
  if (ready()) return true;
  // On the progress path (a message service) the token is ours already.
  if (impl_->progress->on_loop()) return false;
  if (impl_->cfg.spin_us <= 0) {  // no spinning: one pass, as progress() runs
    impl_->progress->try_pass();
    return ready();
  }
  const auto start = Clock::now();
  return impl_->drive_until(start, start + std::chrono::microseconds(impl_->cfg.spin_us), Clock::time_point{}, ready,
                            nullptr);
}

Status Endpoint::cancel(XferId xfer) {
  if (!impl_->xfers.running(xfer)) return NotFound("cancel: transfer " + std::to_string(xfer) + " is not running");
  impl_->progress->post([p = impl_->progress.get(), xfer] {
    p->cancel(xfer, Cancelled("transfer " + std::to_string(xfer) + " cancelled"));
  });
  return Status::Ok();
}

Status Endpoint::set_timeout(XferId xfer, int timeout_ms) {
  if (timeout_ms < 0) return InvalidArgument("set_timeout: timeout_ms must be >= 0");
  if (!impl_->xfers.running(xfer))
    return NotFound("set_timeout: transfer " + std::to_string(xfer) + " is not running");
  auto when = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  impl_->progress->post([p = impl_->progress.get(), xfer, when] { p->set_deadline(xfer, when); });
  return Status::Ok();
}

Status Endpoint::piece_status(XferId xfer, size_t piece, Status* out) const {
  if (out == nullptr) return InvalidArgument("piece_status: out is null");
  return impl_->xfers.piece_status(xfer, piece, out);
}

}  // namespace tcpx
