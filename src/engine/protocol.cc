// The transfer protocol of docs/design.md section 9, on the progress-token
// holder:
//   two-sided  SEND_ANNOUNCE -> CTS | REJECT -> DATA + isends -> irecvs
//   write      WRITE_REQ -> CTS | REJECT -> DATA + isends -> irecvs -> WRITE_ACK
//   read       READ_REQ -> DATA + isends | REJECT -> irecvs
// The sender of the data emits DATA and pushes its chunks onto the channel
// queues in one step; the receiver pushes its chunks in DATA order. Both
// sides therefore post the same sequence on every comm.
//
// Small transfers between host buffers skip the plugin: SEND_EAGER and
// WRITE_INLINE carry the bytes in one frame (answered by WRITE_ACK or REJECT),
// READ_REQ may be answered by READ_INLINE. One round trip, no comm posts, and
// the control connection's write buffer coalesces many of them per syscall.
#include <algorithm>
#include <cstring>
#include <string>

#include "common/log.h"
#include "engine/chunk_schedule.h"
#include "engine/protocol.h"

namespace tcpx::engine {
namespace {
// Acks go out lazily: nobody's bytes wait for them, and the application that
// just received often answers at once, so the ack rides in the answer's send().
constexpr Urgency kLazy = Urgency::kLazy;
}  // namespace

Op* Protocol::new_op(Connection* c, OpKind kind) {
  Op* op = ops_.create();
  op->kind = kind;
  op->conn = c;
  if (c->live_ops++ == 0) loop_.connection_busy(c);
  return op;
}

void Protocol::start_op(Connection* c, const PostedOp& p) {
  Op* op = new_op(c, p.kind);
  op->xfer = p.xfer;
  op->sync = p.sync;
  op->piece = p.piece;
  op->mr = p.mr;
  op->mr_held = true;
  op->data = p.data;
  op->size = p.size;
  op->remote = p.remote;
  op->deadline = p.deadline;
  watch_deadline(op);
  switch (p.kind) {
    case OpKind::kSend:
      if (op->size <= d_.eager_bytes && op->mr.kind == MemoryKind::kHost) {
        op->eager = true;
        queue_request(op, FrameType::kSendEager, {}, op->data, op->size);
      } else {
        queue_request(op, FrameType::kSendAnnounce, encode_u64(op->size));
      }
      break;
    case OpKind::kRecv:
      c->unmatched_recvs.push_back(op);
      try_match(c);
      break;
    case OpKind::kWrite:
      op->eager = op->size <= d_.eager_bytes;
      if (op->eager && op->mr.kind == MemoryKind::kHost) {
        queue_request(op, FrameType::kWriteInline, encode_one_sided({op->remote, op->size}), op->data, op->size);
      } else if (op->eager && download_inline(op)) {
        // Device memory: its WRITE_INLINE leaves from staging (staged()).
      } else {
        op->eager = false;
        queue_request(op, FrameType::kWriteReq, encode_one_sided({op->remote, op->size}));
      }
      break;
    case OpKind::kRead:
      op->incoming = true;
      // Into device memory, the data must come through the plugin (see
      // copy_in): ask the target not to answer inline.
      queue_request(op, FrameType::kReadReq, encode_one_sided({op->remote, op->size}), nullptr, 0,
                    op->mr.kind == MemoryKind::kHost ? 0 : kFlagNoInline);
      break;
    default:
      finish(op, Internal("bad posted op kind"));
  }
}

bool Protocol::receive_held(Connection* c, const PostedOp& p, uint64_t* bytes) {
  // Receives match sends in order: only with no receive waiting before it.
  if (!c->unmatched_recvs.empty() || c->unmatched_announces.empty()) return false;
  const Connection::Announce& a = c->unmatched_announces.front();
  // An undersized buffer takes the usual path, which fails it and the send.
  if (!a.eager || p.mr.kind != MemoryKind::kHost || a.size > p.size) return false;
  Connection::Announce taken = std::move(c->unmatched_announces.front());
  c->unmatched_announces.pop_front();
  c->unmatched_bytes -= taken.held_bytes();
  if (taken.size > 0) std::memcpy(p.data, taken.data.data(), taken.size);
  ack(c, taken.peer_id, Status::Ok());
  c->control->recycle(std::move(taken.data));
  *bytes = taken.size;
  return true;
}

void Protocol::queue_request(Op* op, FrameType type, std::span<const uint8_t> header, const uint8_t* data,
                             size_t len, uint8_t flags) {
  Connection* c = op->conn;
  Status s = data != nullptr ? c->control->queue2(type, op->id, header, data, len, Urgency::kRequest)
                             : c->control->queue(type, op->id, header, Urgency::kRequest, flags);
  if (!s.ok()) return loop_.queue_failed(c);  // the connection fails at the pass's end, op with it
  op->owes_reply = true;
  c->owed.queued(op->kind != OpKind::kSend);
}

void Protocol::answered(Op* op) {
  if (!op->owes_reply) return;
  op->owes_reply = false;
  op->conn->owed.answered(op->kind != OpKind::kSend);
}

void Protocol::ack(Connection* c, uint64_t id, const Status& s) {
  if (s.ok()) loop_.queue_frame(c, FrameType::kWriteAck, id, ok_ack_payload(), kLazy);
  else loop_.queue_frame(c, FrameType::kWriteAck, id, encode_ack(s), kLazy);
}

void Protocol::reject(Connection* c, uint64_t id, const Status& s) {
  loop_.queue_frame(c, FrameType::kReject, id, encode_reject({s.code(), s.message()}));
}

void Protocol::handle_frame(Connection* c, Frame& f) {
  switch (f.type) {
    case FrameType::kSendAnnounce: on_announce(c, f); return;
    case FrameType::kCts: on_cts(c, f); return;
    case FrameType::kReject: on_reject(c, f); return;
    case FrameType::kData: on_data(c, f); return;
    case FrameType::kWriteReq: on_write_req(c, f); return;
    case FrameType::kWriteAck: on_write_ack(c, f); return;
    case FrameType::kReadReq: on_read_req(c, f); return;
    case FrameType::kNotify: on_notify(c, f); return;
    case FrameType::kMessage: on_message(c, f); return;
    case FrameType::kSendEager: on_send_eager(c, f); return;
    case FrameType::kWriteInline: on_write_inline(c, f); return;
    case FrameType::kReadInline: on_read_inline(c, f); return;
    case FrameType::kCancel: on_cancel(c, f); return;
    case FrameType::kPing: loop_.queue_frame(c, FrameType::kPong, 0, {}); return;
    case FrameType::kPong: return;  // being heard was the point (on_readable)
    default:
      loop_.fail_connection(c, ProtocolError(std::string("unexpected ") + frame_type_name(f.type) +
                                       " frame after the handshake"));
  }
}

void Protocol::on_message(Connection* c, Frame& f) {
  Status s = c->deliver(std::move(f.payload));
  if (!s.ok()) loop_.fail_connection(c, s);
}

// A reply must name one of our ops on this very connection, in a state that
// expects a reply; anything else means the peer is confused or hostile.
Op* Protocol::find_op(Connection* c, uint64_t id, const Frame& f) {
  Op* op = ops_.find(id);
  if (op == nullptr || op->conn != c) {
    loop_.fail_connection(c, ProtocolError(std::string(frame_type_name(f.type)) + " for unknown request " +
                                     std::to_string(id)));
    return nullptr;
  }
  return op;
}

// An unmatched receive has no id the peer could know; a frame naming it is
// bogus (and acting on it would leave a dangling entry in unmatched_recvs).
bool Protocol::known_to_peer(const Op* op) { return op->kind != OpKind::kRecv || op->incoming; }

void Protocol::on_announce(Connection* c, const Frame& f) {
  uint64_t size = 0;
  Status s = decode_u64(f.payload, &size);
  if (!s.ok()) return loop_.fail_connection(c, s);
  hold_announce(c, {f.id, size, false, {}});
}

void Protocol::on_send_eager(Connection* c, Frame& f) {
  const std::span<const uint8_t> bytes = f.bytes();
  if (!c->unmatched_recvs.empty() && c->unmatched_announces.empty()) {
    // A receive is waiting for it: the bytes go from where they were read
    // straight to its buffer.
    Op* op = c->unmatched_recvs.front();
    c->unmatched_recvs.pop_front();
    return match(c, op, {f.id, bytes.size(), true, {}}, bytes);
  }
  // Held until a receive is posted, in a copy of its own: the frame's
  // buffer, which goes back to the channel once matched (try_match).
  if (f.viewed) f.payload.assign(bytes.begin(), bytes.end());
  hold_announce(c, {f.id, bytes.size(), true, std::move(f.payload)});
}

// Refusing (rather than no longer reading the control socket) cannot stall
// the connection: acks, heartbeats and the receives' own frames keep flowing.
// Refused sends are never queued, so the order of the others is kept.
void Protocol::hold_announce(Connection* c, Connection::Announce a) {
  if (c->unmatched_recvs.empty() && c->unmatched_bytes + a.held_bytes() > d_.max_unmatched_bytes) {
    return reject(c, a.peer_id,
                  Status(StatusCode::kBusy, "receiver already holds " + std::to_string(c->unmatched_bytes) +
                                                " bytes of " + std::to_string(c->unmatched_announces.size()) +
                                                " sends no receive was posted for (TCPX_MAX_UNMATCHED_BYTES=" +
                                                std::to_string(d_.max_unmatched_bytes) + ")"));
  }
  c->unmatched_bytes += a.held_bytes();
  c->unmatched_announces.push_back(std::move(a));
  try_match(c);
}

// Inline bytes land in host memory only. A synchronous cudaMemcpy into device
// memory here would wait for every kernel the application queued on the
// legacy stream; inline data meant for device memory is uploaded
// asynchronously instead (upload_inline), or, when that cannot start, asked
// for again through the plugin (match, on_write_inline), whose receives the
// GPU unpacker lands asynchronously. Reads into device memory are never
// answered inline (kFlagNoInline).
Status Protocol::copy_in(const MrInfo& mr, void* dst, const uint8_t* src, size_t n) {
  if (mr.kind != MemoryKind::kHost) return Internal("inline data for device memory reached copy_in");
  if (n > 0) std::memcpy(dst, src, n);
  return Status::Ok();
}

void Protocol::try_match(Connection* c) {
  while (!c->unmatched_recvs.empty() && !c->unmatched_announces.empty() && c->error.ok()) {
    Op* op = c->unmatched_recvs.front();
    Connection::Announce a = std::move(c->unmatched_announces.front());
    c->unmatched_recvs.pop_front();
    c->unmatched_announces.pop_front();
    c->unmatched_bytes -= a.held_bytes();
    match(c, op, a, a.data);
    c->control->recycle(std::move(a.data));
  }
}

void Protocol::match(Connection* c, Op* op, const Connection::Announce& a, std::span<const uint8_t> eager_bytes) {
  op->peer_id = a.peer_id;
  if (a.size > op->size) {
    Status s = InvalidArgument("receive buffer of " + std::to_string(op->size) + " bytes is smaller than the " +
                               std::to_string(a.size) + " bytes sent");
    reject(c, a.peer_id, s);
    return finish(op, s);
  }
  op->size = a.size;
  if (a.eager && op->mr.kind == MemoryKind::kHost) {
    Status s = copy_in(op->mr, op->data, eager_bytes.data(), eager_bytes.size());
    ack(c, a.peer_id, s);
    return finish(op, s);
  }
  if (a.eager && upload_inline(c, op, eager_bytes.data(), eager_bytes.size())) return;
  // Eager bytes that could not be uploaded: the sender has not completed
  // (it waits for our answer), so a CTS makes it send them again through
  // the plugin.
  op->incoming = true;
  loop_.queue_frame(c, FrameType::kCts, a.peer_id, encode_u64(op->id));
}

void Protocol::on_cts(Connection* c, const Frame& f) {
  uint64_t token = 0;
  Status s = decode_u64(f.payload, &token);
  if (!s.ok()) return loop_.fail_connection(c, s);
  Op* op = find_op(c, f.id, f);
  if (op == nullptr) return;
  if ((op->kind != OpKind::kSend && op->kind != OpKind::kWrite) || op->state != OpState::kAwaitReply)
    return loop_.fail_connection(c, ProtocolError("CTS for a request that did not ask for one"));
  answered(op);
  if (op->cancel) {
    // Cancelled before the peer's answer: the peer's receive (or serving
    // write) posted nothing yet, since nothing is posted before DATA, and
    // ends with the same code.
    std::string what = op->kind == OpKind::kSend ? "the sender withdrew the send (" : "the writer withdrew the write (";
    reject(c, token, Status(op->cancel->code(), what + op->cancel->message() + ")"));
    return finish(op, *op->cancel);
  }
  op->eager = false;  // an inline send or write the peer wants through the plugin
  start_sending(op, token);
}

void Protocol::on_reject(Connection* c, const Frame& f) {
  RejectPayload rj;
  Status s = decode_reject(f.payload, &rj);
  if (!s.ok()) return loop_.fail_connection(c, s);
  Op* op = find_op(c, f.id, f);
  if (op == nullptr) return;
  if (!known_to_peer(op)) return loop_.fail_connection(c, ProtocolError("REJECT for a receive the peer never saw"));
  // A sender may reject after our CTS (it could not register its memory);
  // we posted nothing yet, since nothing is posted before DATA.
  if (op->state != OpState::kAwaitReply && op->state != OpState::kAwaitAck)
    return loop_.fail_connection(c, ProtocolError("REJECT for a request already moving data"));
  answered(op);
  // The answer to our CANCEL carries its code back: end with our own reason.
  if (op->cancel && rj.code == op->cancel->code()) return finish(op, *op->cancel);
  finish(op, Status(rj.code, "peer refused: " + rj.reason));
}

void Protocol::start_sending(Op* op, uint64_t token) {
  Connection* c = op->conn;
  auto nch = static_cast<uint32_t>(c->channels.size());
  DataPayload d{op->size, d_.chunk_bytes, nch, c->next_first_channel};
  c->next_first_channel = (c->next_first_channel + 1) % nch;
  ChunkSchedule sched;
  Status s = ChunkSchedule::make(d.size, d.chunk_bytes, d.channels, d.first_channel, &sched);
  // Register every window first: once DATA is out the peer posts irecvs that
  // only our isends can complete, so failing after it would break the comm.
  uint64_t n = sched.count();
  for (uint64_t i = 0; i < n && s.ok(); ++i) {
    ChunkReq r;
    s = chunk_request(op, sched.at(i), ChunkSide::kSend, &r);
  }
  if (!s.ok()) {
    reject(c, token, s);
    finish(op, s);
    return;
  }
  loop_.queue_frame(c, FrameType::kData, token, encode_data(d));
  if (!c->error.ok()) return;
  op->state = OpState::kTransferring;
  op->chunks_left = n;
  for (uint64_t i = 0; i < n; ++i) {
    const Chunk ch = sched.at(i);
    ChunkReq r;
    (void)chunk_request(op, ch, ChunkSide::kSend, &r);  // registered above
    c->channels[ch.channel]->sq->push(r);
  }
  if (n == 0) data_done(op);
}

void Protocol::on_data(Connection* c, const Frame& f) {
  DataPayload d;
  Status s = decode_data(f.payload, &d);
  if (!s.ok()) return loop_.fail_connection(c, s);
  Op* op = find_op(c, f.id, f);
  if (op == nullptr) return;
  if (!known_to_peer(op)) return loop_.fail_connection(c, ProtocolError("DATA for a receive the peer never saw"));
  bool receiver = op->kind == OpKind::kRecv || op->kind == OpKind::kRead || op->kind == OpKind::kServeWrite;
  if (!receiver || op->state != OpState::kAwaitReply)
    return loop_.fail_connection(c, ProtocolError("DATA for a request that is not waiting for data"));
  if (d.size != op->size)
    return loop_.fail_connection(c, ProtocolError("DATA announces " + std::to_string(d.size) + " bytes, expected " +
                                            std::to_string(op->size)));
  if (d.channels != c->channels.size())
    return loop_.fail_connection(c, ProtocolError("DATA uses " + std::to_string(d.channels) + " channels, connection has " +
                                            std::to_string(c->channels.size())));
  answered(op);  // a read's answer (a receive or serving write asked nothing)
  start_receiving(op, d);
}

void Protocol::start_receiving(Op* op, const DataPayload& d) {
  Connection* c = op->conn;
  ChunkSchedule sched;
  Status s = ChunkSchedule::make(d.size, d.chunk_bytes, d.channels, d.first_channel, &sched);
  if (!s.ok()) return loop_.fail_connection(c, ProtocolError("bad DATA schedule: " + s.message()));
  begin_incoming(c, op);
  uint64_t n = sched.count();
  op->chunks_left = n;
  for (uint64_t i = 0; i < n; ++i) {
    const Chunk ch = sched.at(i);
    ChunkReq r;
    s = chunk_request(op, ch, ChunkSide::kRecv, &r);
    if (!s.ok()) {
      // The sender's isends are already on their way: this comm's order can
      // no longer be kept, so the connection goes.
      return loop_.fail_connection(c, Status(s.code(), "registering a receive buffer: " + s.message()));
    }
    c->channels[ch.channel]->rq->push(r);
  }
  if (n == 0) data_done(op);
}

Status Protocol::chunk_request(Op* op, const Chunk& ch, ChunkSide side, ChunkReq* r) {
  Channel* chan = op->conn->channels[ch.channel].get();
  r->owner = op;
  r->data = op->data + ch.offset;
  r->size = static_cast<int>(ch.size);
  r->dst_cuda = side == ChunkSide::kRecv && op->mr.kind == MemoryKind::kCuda;
  const uint64_t offset = reinterpret_cast<uintptr_t>(op->data) - op->mr.base + ch.offset;
  if (side == ChunkSide::kSend)
    return chan->send_mrs.get(d_.transport.get(), chan->comms.send.get(), op->mr, offset, ch.size, &r->mh);
  return chan->recv_mrs.get(d_.transport.get(), chan->comms.recv.get(), op->mr, offset, ch.size, &r->mh);
}

void Protocol::chunk_done(Op* op) {
  if (--op->chunks_left == 0) data_done(op);
}

void Protocol::data_done(Op* op) {
  switch (op->kind) {
    case OpKind::kWrite:
      if (op->acked) return finish(op, op->ack_status);
      op->state = OpState::kAwaitAck;
      return;
    case OpKind::kServeWrite:
      ack(op->conn, op->peer_id, Status::Ok());
      return finish(op, Status::Ok());
    default:
      return finish(op, Status::Ok());
  }
}

// A FifoItem is good for the connection it was advertised for only
// (advertise() tags it with the target's id of that connection): an item
// handed to one peer cannot be used by another peer, or over another
// connection, to reach the region.
Status Protocol::acquire_advertised(Connection* c, const FifoItem& item, uint64_t size, FifoFields* fields,
                                    MrInfo* mr) {
  TCPX_RETURN_IF_ERROR(decode_fifo_item(item, fields));
  if (fields->tag != c->id)
    return InvalidArgument("FifoItem was advertised for connection " + std::to_string(fields->tag) +
                           ", not for connection " + std::to_string(c->id) + " that the request came on");
  return d_.mrs->acquire_remote(*fields, size, mr);
}

void Protocol::on_write_req(Connection* c, const Frame& f) {
  OneSidedPayload p;
  Status s = decode_one_sided(f.payload, &p);
  if (!s.ok()) return loop_.fail_connection(c, s);
  FifoFields fields;
  MrInfo mr;
  s = acquire_advertised(c, p.item, p.size, &fields, &mr);
  if (!s.ok()) return reject(c, f.id, s);
  Op* op = new_serve_write(c, f.id, fields, mr, p.size);
  loop_.queue_frame(c, FrameType::kCts, f.id, encode_u64(op->id));
}

Op* Protocol::new_serve_write(Connection* c, uint64_t peer_id, const FifoFields& fields, const MrInfo& mr,
                              uint64_t size) {
  Op* op = new_op(c, OpKind::kServeWrite);
  op->mr = mr;
  op->mr_held = true;
  op->data = reinterpret_cast<uint8_t*>(mr.base + fields.offset);
  op->size = size;
  op->peer_id = peer_id;
  return op;
}

bool Protocol::upload_inline(Connection* c, Op* op, const uint8_t* src, size_t n) {
  if (!staging_.start_upload(op, op->data, src, n)) return false;
  op->staging = true;
  begin_incoming(c, op);
  return true;
}

void Protocol::begin_incoming(Connection* c, Op* op) {
  op->state = OpState::kTransferring;
  op->incoming = true;
  op->incoming_seq = c->incoming_next++;
  c->incoming_pending.push_back(op->incoming_seq);
}

bool Protocol::download_inline(Op* op) {
  if (!staging_.start_download(op, op->data, op->size)) return false;
  op->staging = true;
  return true;
}

bool Protocol::poll_staging() {
  bool any = false;
  InlineStaging::Done d;
  while (staging_.front_done(&d)) {
    if (d.owner != nullptr) staged(static_cast<Op*>(d.owner), d);
    staging_.pop_front();  // after staged(): a download's frame was copied from the slot
    any = true;
  }
  return any;
}

void Protocol::staged(Op* op, const InlineStaging::Done& d) {
  op->staging = false;
  Connection* c = op->conn;
  switch (op->kind) {
    case OpKind::kRecv:
    case OpKind::kServeWrite:
      // An eager receive and an inline write's target owe the sender the
      // same answer: the bytes are in place, or why not.
      ack(c, op->peer_id, d.status);
      return finish(op, d.status);
    case OpKind::kWrite:
      // Not on the wire yet: a cancel or deadline ends it here.
      if (!d.status.ok()) return finish(op, d.status);
      if (op->cancel) return finish(op, *op->cancel);
      return queue_request(op, FrameType::kWriteInline, encode_one_sided({op->remote, op->size}), d.staged,
                           op->size);
    case OpKind::kServeRead: {
      if (!d.status.ok()) {
        reject(c, op->peer_id, d.status);
        return finish(op, d.status);
      }
      Status q = c->control->queue2(FrameType::kReadInline, op->peer_id, {}, d.staged, op->size);
      if (!q.ok()) loop_.queue_failed(c);
      return finish(op, q);
    }
    default:
      return finish(op, Internal("inline copy finished for an op that has none"));
  }
}

void Protocol::on_write_ack(Connection* c, const Frame& f) {
  // WRITE_ACK carries (code, reason); code OK, and nothing else, means the
  // data is in place.
  Status result;
  Status s = decode_ack(f.payload, &result);
  if (!s.ok()) return loop_.fail_connection(c, s);
  Op* op = find_op(c, f.id, f);
  if (op == nullptr) return;
  if (op->eager && op->state == OpState::kAwaitReply) {
    answered(op);
    return finish(op, result);
  }
  if (op->kind != OpKind::kWrite || op->state == OpState::kAwaitReply)
    return loop_.fail_connection(c, ProtocolError("WRITE_ACK for a request that is not a started write"));
  if (op->state == OpState::kAwaitAck) return finish(op, result);
  op->acked = true;
  op->ack_status = result;
}

void Protocol::on_read_req(Connection* c, const Frame& f) {
  OneSidedPayload p;
  Status s = decode_one_sided(f.payload, &p);
  if (!s.ok()) return loop_.fail_connection(c, s);
  FifoFields fields;
  MrInfo mr;
  s = acquire_advertised(c, p.item, p.size, &fields, &mr);
  if (!s.ok()) return reject(c, f.id, s);
  const uint8_t* src = reinterpret_cast<const uint8_t*>(mr.base + fields.offset);
  const bool inline_answer = p.size <= d_.eager_bytes && (f.flags & kFlagNoInline) == 0;
  if (inline_answer && mr.kind == MemoryKind::kHost) {
    Status q = c->control->queue2(FrameType::kReadInline, f.id, {}, src, p.size);
    d_.mrs->release(mr.id);
    if (!q.ok()) loop_.queue_failed(c);
    return;
  }
  Op* op = new_op(c, OpKind::kServeRead);
  op->mr = mr;
  op->mr_held = true;
  op->data = reinterpret_cast<uint8_t*>(mr.base + fields.offset);
  op->size = p.size;
  op->peer_id = f.id;
  // Device memory: the READ_INLINE leaves from staging (staged()).
  if (inline_answer && download_inline(op)) return;
  start_sending(op, f.id);
}

void Protocol::on_write_inline(Connection* c, const Frame& f) {
  constexpr size_t kHead = sizeof(FifoItem) + 8;
  const std::span<const uint8_t> payload = f.bytes();
  if (payload.size() < kHead) return loop_.fail_connection(c, ProtocolError("malformed WRITE_INLINE payload"));
  OneSidedPayload p;
  Status s = decode_one_sided(payload.first(kHead), &p);
  if (!s.ok() || p.size != payload.size() - kHead)
    return loop_.fail_connection(c, ProtocolError("malformed WRITE_INLINE payload"));
  FifoFields fields;
  MrInfo mr;
  s = acquire_advertised(c, p.item, p.size, &fields, &mr);
  if (!s.ok()) return reject(c, f.id, s);
  if (mr.kind != MemoryKind::kHost) {  // see copy_in
    Op* op = new_serve_write(c, f.id, fields, mr, p.size);
    if (upload_inline(c, op, payload.data() + kHead, p.size)) return;
    loop_.queue_frame(c, FrameType::kCts, f.id, encode_u64(op->id));
    return;
  }
  s = copy_in(mr, reinterpret_cast<void*>(mr.base + fields.offset), payload.data() + kHead, p.size);
  d_.mrs->release(mr.id);
  if (!s.ok()) return reject(c, f.id, s);
  ack(c, f.id, Status::Ok());
}

void Protocol::on_read_inline(Connection* c, const Frame& f) {
  Op* op = find_op(c, f.id, f);
  if (op == nullptr) return;
  if (op->kind != OpKind::kRead || op->state != OpState::kAwaitReply)
    return loop_.fail_connection(c, ProtocolError("READ_INLINE for a request that is not a pending read"));
  answered(op);
  const std::span<const uint8_t> payload = f.bytes();
  if (payload.size() != op->size)
    return loop_.fail_connection(c, ProtocolError("READ_INLINE carries " + std::to_string(payload.size()) +
                                            " bytes, expected " + std::to_string(op->size)));
  if (op->mr.kind != MemoryKind::kHost)
    return finish(op, ProtocolError("READ_INLINE answers a read into device memory, which asked for DATA "
                                    "(the peer ignores READ_REQ's no-inline flag)"));
  finish(op, copy_in(op->mr, op->data, payload.data(), payload.size()));
}

void Protocol::on_cancel(Connection* c, const Frame& f) {
  RejectPayload why;
  Status s = decode_reject(f.payload, &why);
  if (!s.ok()) return loop_.fail_connection(c, s);
  auto& q = c->unmatched_announces;
  auto it = std::find_if(q.begin(), q.end(), [&](const Connection::Announce& a) { return a.peer_id == f.id; });
  // Matched already: our CTS, ack or REJECT is on its way and answers it.
  if (it == q.end()) return;
  c->unmatched_bytes -= it->held_bytes();
  q.erase(it);
  reject(c, f.id, Status(why.code, "send withdrawn before a receive matched it"));
}

void Protocol::cancel(XferId xfer, const Status& why) {
  std::vector<Op*> mine;
  for (Op* op : ops_.live())
    if (op->xfer == xfer) mine.push_back(op);
  for (Op* op : mine) cancel_op(op, why);
}

void Protocol::cancel_op(Op* op, const Status& why) {
  if (op->cancel) return;  // the first reason stands
  Connection* c = op->conn;
  switch (op->kind) {
    case OpKind::kRecv:
      if (!op->incoming) {  // unmatched: the peer never heard of it
        auto& q = c->unmatched_recvs;
        auto it = std::find(q.begin(), q.end(), op);
        if (it == q.end()) return;  // cannot happen: an unmatched receive waits in q
        q.erase(it);
        finish(op, why);
      }
      return;  // matched: the sender's DATA follows our CTS
    case OpKind::kSend:
      if (op->state != OpState::kAwaitReply) return;
      op->cancel = why;
      loop_.queue_frame(c, FrameType::kCancel, op->id, encode_reject({why.code(), why.message()}));
      return;
    case OpKind::kWrite:
      // The target answers a write at once; a CTS gets REJECT (on_cts), an
      // inline write's ack or refusal ends it as it is.
      if (op->state == OpState::kAwaitReply) op->cancel = why;
      return;
    default:
      return;  // reads are answered at once; target-side ops have no transfer
  }
}

void Protocol::watch_deadline(Op* op) {
  if (op->deadline == kNoDeadline) return;
  deadlines_.push({op->deadline, op->id});
  // The entries of ops that ended stay until their deadline comes up; with a
  // default deadline on every transfer they would pile up (a million
  // transfers a second and a 60 s deadline: 60 million), so now and then
  // the heap is rebuilt from the live ops. Amortized: at least 1024 pushes
  // between rebuilds.
  if (deadlines_.size() > 2 * ops_.live_count() + 1024) {
    decltype(deadlines_) fresh;
    for (Op* o : ops_.live())
      if (o->deadline != kNoDeadline) fresh.push({o->deadline, o->id});
    deadlines_ = std::move(fresh);
  }
}

void Protocol::set_deadline(XferId xfer, std::chrono::steady_clock::time_point when) {
  for (Op* op : ops_.live()) {
    if (op->xfer != xfer) continue;
    op->deadline = when;
    watch_deadline(op);
  }
}

void Protocol::expire(std::chrono::steady_clock::time_point now) {
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    Op* op = ops_.find(deadlines_.top().second);
    deadlines_.pop();
    if (op == nullptr || op->deadline > now || (op->xfer == 0 && op->sync == nullptr)) continue;
    cancel_op(op, TimedOut(op->xfer != 0 ? "transfer " + std::to_string(op->xfer) + " passed its deadline"
                                         : std::string("transfer passed its deadline")));
  }
}

void Protocol::on_notify(Connection* c, const Frame& f) {
  NotifyPayload p;
  Status s = decode_notify(f.payload, &p);
  if (!s.ok()) return loop_.fail_connection(c, s);
  Notification n{c->id, std::move(p.name), std::move(p.msg)};
  // Checked on arrival, where failing the connection is safe (release runs
  // inside op completion too). What other connections hold back is not
  // counted, so the endpoint queue stays within the cap plus that.
  uint64_t queued = d_.queued_notification_bytes ? d_.queued_notification_bytes->load() : 0;
  if (queued + c->held_bytes + notification_cost(n) > d_.max_undelivered_bytes)
    return loop_.fail_connection(
        c, ProtocolError("peer overran the notification queue: " + std::to_string(queued + c->held_bytes) +
                         " bytes undelivered, get_notifications is not keeping up (TCPX_MAX_UNDELIVERED_BYTES=" +
                         std::to_string(d_.max_undelivered_bytes) + ")"));
  c->held_bytes += notification_cost(n);
  c->held.push_back({c->incoming_next, std::move(n)});
  release_notifications(c);
}

void Protocol::release_notifications(Connection* c) {
  uint64_t first_pending = c->incoming_pending.empty() ? c->incoming_next : c->incoming_pending.front();
  while (!c->held.empty() && c->held.front().barrier <= first_pending) {
    c->held_bytes -= notification_cost(c->held.front().n);
    d_.deliver_notification(std::move(c->held.front().n));
    c->held.pop_front();
  }
}

void Protocol::finish(Op* op, const Status& s) {
  Connection* c = op->conn;
  if (op->staging) staging_.forget(op);  // its connection failed first
  answered(op);  // ends without a reply: only when the connection failed
  if (op->mr_held) d_.mrs->release(op->mr.id);
  d_.transfers->op_done(op->xfer, op->piece, op->sync, s, s.ok() ? op->size : 0);
  bool was_incoming = op->state == OpState::kTransferring && op->incoming;
  uint64_t seq = op->incoming_seq;
  --c->live_ops;
  ops_.destroy(op);
  if (!was_incoming) return;
  auto& pending = c->incoming_pending;
  auto it = std::lower_bound(pending.begin(), pending.end(), seq);
  if (it == pending.end() || *it != seq) return;
  pending.erase(it);
  if (c->error.ok()) release_notifications(c);
}

}  // namespace tcpx::engine

namespace tcpx::engine {

void Protocol::fail_ops(Connection* c, const Status& err) {
  for (Op* op : ops_.live())
    if (op->conn == c) finish(op, err);
}

}  // namespace tcpx::engine
