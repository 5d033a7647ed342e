#include "server_session.h"

#include <chrono>
#include <thread>

#include "support/hex.h"
#include "support/pattern.h"

namespace tcpx::soak {
namespace {

// Bytes after a received message must stay as they were: a receive that
// writes past the sender's size is a data error too.
constexpr uint8_t kUntouched = 0xEE;
constexpr size_t kGuardBytes = 64;
// Re-registering the region now and then keeps reg/dereg (and the plugin's
// lazy regMr per comm) in the mix.
constexpr uint64_t kOpsPerRegistration = 32;

// Piece i of an op starts where piece i - 1 ended.
size_t piece_offset(const Op& op, size_t i) {
  size_t off = 0;
  for (size_t k = 0; k < i; ++k) off += op.sizes[k];
  return off;
}

}  // namespace

ServerSession::ServerSession(Endpoint* ep, NotificationInbox* inbox, SoakStats* stats, ConnId conn,
                             const std::atomic<bool>* abandon)
    : ep_(ep), inbox_(inbox), stats_(stats), conn_(conn), abandon_(abandon), region_(kRegionBytes + kGuardBytes) {}

ServerSession::~ServerSession() {
  // After a failed connection a transfer may hold the region for a moment:
  // dereg answers BUSY then, and the region must outlive the engine's use.
  for (int i = 0; registered_ && i < 1000; ++i) {
    Status s = ep_->dereg(mr_);
    if (s.code() != StatusCode::kBusy) {
      if (!s.ok()) stats_->count_unexpected("dereg failed", s.to_string());
      registered_ = false;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (registered_) stats_->count_unexpected("dereg BUSY for 10 s", "connection " + std::to_string(conn_));
  // Leaking the region is safer than freeing memory the engine may touch.
  if (registered_) new std::vector<uint8_t>(std::move(region_));
}

Status ServerSession::run() {
  TCPX_RETURN_IF_ERROR(reregister());
  for (uint64_t served = 0;; ++served) {
    std::string line;
    Status s = next_request(&line, -1);
    if (!s.ok()) return s;
    if (line == "bye") {
      TCPX_RETURN_IF_ERROR(reply("bye"));
      return Status::Ok();
    }
    if (line.rfind("fail ", 0) == 0) {
      data_failed_ = true;
      stats_->count_unexpected("data check failed at the peer", line.substr(5));
      return ProtocolError("the peer found bad data");
    }
    Op op;
    s = Op::decode(line, &op);
    if (!s.ok()) return s;
    TCPX_RETURN_IF_ERROR(serve(op));
    stats_->count_transfer(op.kind, op.total());
    if (served % kOpsPerRegistration == kOpsPerRegistration - 1) TCPX_RETURN_IF_ERROR(reregister());
  }
}

Status ServerSession::serve(const Op& op) {
  switch (op.kind) {
    case OpKind::kSend: return receive(op);
    case OpKind::kRecv: return send(op);
    case OpKind::kWrite:
    case OpKind::kWritev: return advertise_for_write(op);
    case OpKind::kRead:
    case OpKind::kReadv: return advertise_for_read(op);
    case OpKind::kNotify: return check_notification(op);
  }
  return Internal("unknown op");
}

Status ServerSession::receive(const Op& op) {
  size_t size = op.sizes[0];
  // Sometimes more room than the message needs: the receive must stop at
  // the sender's size.
  size_t capacity = size + op.seed % (kRegionBytes - size + 1);
  std::fill(region_.begin(), region_.end(), kUntouched);
  XferId x = 0;
  TCPX_RETURN_IF_ERROR(ep_->recv_async(conn_, mr_, region_.data(), capacity, &x));
  TCPX_RETURN_IF_ERROR(ep_->wait(x, kStepTimeoutMs));
  size_t bad = test::check_pattern(region_.data(), size, op.seed);
  if (bad != test::kPatternMatches)
    return data_mismatch("recv of " + std::to_string(size) + " bytes: first bad byte at " + std::to_string(bad));
  for (size_t i = size; i < region_.size() && i < size + kGuardBytes; ++i)
    if (region_[i] != kUntouched) return data_mismatch("recv of " + std::to_string(size) + " bytes wrote byte " + std::to_string(i));
  return reply("ok");
}

Status ServerSession::send(const Op& op) {
  size_t size = op.sizes[0];
  test::fill_pattern(region_.data(), size, op.seed);
  XferId x = 0;
  TCPX_RETURN_IF_ERROR(ep_->send_async(conn_, mr_, region_.data(), size, &x));
  TCPX_RETURN_IF_ERROR(ep_->wait(x, kStepTimeoutMs));
  return reply("ok");
}

Status ServerSession::advertise_for_write(const Op& op) {
  // Other bytes first, so a write that never landed fails the check.
  for (size_t i = 0; i < op.sizes.size(); ++i)
    test::fill_pattern(region_.data() + piece_offset(op, i), op.sizes[i], ~(op.seed + i));
  std::string items;
  TCPX_RETURN_IF_ERROR(advertise_pieces(op, &items));
  TCPX_RETURN_IF_ERROR(reply("items" + items));
  std::string line;
  TCPX_RETURN_IF_ERROR(next_request(&line, kStepTimeoutMs));
  if (line != "written") return ProtocolError("expected 'written', got '" + line + "'");
  TCPX_RETURN_IF_ERROR(check_pieces(op, op_name(op.kind)));
  return reply("ok");
}

Status ServerSession::advertise_for_read(const Op& op) {
  for (size_t i = 0; i < op.sizes.size(); ++i)
    test::fill_pattern(region_.data() + piece_offset(op, i), op.sizes[i], op.seed + i);
  std::string items;
  TCPX_RETURN_IF_ERROR(advertise_pieces(op, &items));
  TCPX_RETURN_IF_ERROR(reply("items" + items));
  // The region is ours again once the peer says it read it.
  std::string line;
  TCPX_RETURN_IF_ERROR(next_request(&line, kStepTimeoutMs));
  if (line != "read") return ProtocolError("expected 'read', got '" + line + "'");
  return reply("ok");
}

Status ServerSession::check_notification(const Op& op) {
  // Sent before the request on the same connection, so it is here by now;
  // the deadline only bounds a lost one.
  Notification n;
  Status s = inbox_->take(conn_, &n, kStepTimeoutMs);
  if (s.code() == StatusCode::kTimedOut) return data_mismatch("notification never arrived");
  TCPX_RETURN_IF_ERROR(s);
  if (n.name != "soak" || n.msg != notification_text(op.seed, op.sizes[0]))
    return data_mismatch("notification '" + n.name + "' carries the wrong text (" + std::to_string(n.msg.size()) +
                         " chars, expected " + std::to_string(2 * op.sizes[0]) + ")");
  return reply("ok");
}

Status ServerSession::advertise_pieces(const Op& op, std::string* reply_text) {
  for (size_t i = 0; i < op.sizes.size(); ++i) {
    FifoItem item;
    TCPX_RETURN_IF_ERROR(ep_->advertise(conn_, mr_, region_.data() + piece_offset(op, i), op.sizes[i], &item));
    *reply_text += " " + test::to_hex(item.bytes, sizeof(item.bytes));
  }
  return Status::Ok();
}

Status ServerSession::check_pieces(const Op& op, const char* what) {
  for (size_t i = 0; i < op.sizes.size(); ++i) {
    size_t bad = test::check_pattern(region_.data() + piece_offset(op, i), op.sizes[i], op.seed + i);
    if (bad != test::kPatternMatches)
      return data_mismatch(std::string(what) + " piece " + std::to_string(i) + " of " + std::to_string(op.sizes[i]) +
                           " bytes: first bad byte at " + std::to_string(bad));
  }
  return Status::Ok();
}

Status ServerSession::next_request(std::string* line, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::vector<uint8_t> msg;
    // Short slices so that `abandon` is seen; an idle peer is normal (it may
    // be busy starting), a dead one ends this with PEER_CLOSED.
    Status s = ep_->recv_message(conn_, &msg, 200);
    if (s.ok()) {
      line->assign(msg.begin(), msg.end());
      return s;
    }
    if (s.code() != StatusCode::kTimedOut) return s;
    if (abandon_->load()) return TimedOut("abandoned: no request while the soak shut down");
    if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline)
      return TimedOut("no request within " + std::to_string(timeout_ms) + " ms");
  }
}

Status ServerSession::reply(const std::string& line) { return ep_->send_message(conn_, line.data(), line.size()); }

Status ServerSession::data_mismatch(const std::string& detail) {
  data_failed_ = true;
  stats_->count_unexpected("data check failed at the server", detail);
  (void)reply("bad " + detail);
  return ProtocolError("data check failed: " + detail);
}

Status ServerSession::reregister() {
  if (registered_) {
    TCPX_RETURN_IF_ERROR(ep_->dereg(mr_));
    registered_ = false;
  }
  TCPX_RETURN_IF_ERROR(ep_->reg(region_.data(), region_.size(), &mr_));
  registered_ = true;
  return Status::Ok();
}

}  // namespace tcpx::soak
