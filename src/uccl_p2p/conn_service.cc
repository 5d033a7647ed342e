// A connection's service thread: it reads the connection's application
// messages and answers them, so that the target of a read or write never has
// to call anything and the initiator's transfers move on from granting to
// running without a caller polling.
#include <new>
#include <string>

#include "common/log.h"
#include "uccl_p2p/messages.h"
#include "uccl_p2p/state.h"

namespace tcpx::uccl_p2p {
namespace {

// The wait of one recv_message: bounds how long conn_destroy waits for the
// thread when the close itself does not wake it.
constexpr int kRecvSliceMs = 100;

// Target side: check every range against the grants and advertise it to this
// peer, or refuse the whole batch naming the first bad range.
GrantReply serve(uccl_conn* c, const GrantRequest& req) {
  GrantReply reply;
  reply.request_id = req.request_id;
  reply.first = req.first;
  reply.items.reserve(req.refs.size());
  for (size_t i = 0; i < req.refs.size(); ++i) {
    GrantedRange range;
    Status s = c->engine->grants.check(req.refs[i], &range);
    FifoItem item;
    if (s.ok()) s = c->engine->ep->advertise(c->id, range.mr, reinterpret_cast<const void*>(range.addr),
                                            range.size, &item);
    if (!s.ok()) {
      TCPX_WARN("uccl_p2p: refused range %zu of a request from %s:%u: %s", req.first + i, c->peer.ip.c_str(),
                c->peer.port, s.to_string().c_str());
      reply.items.clear();
      reply.code = s.code();
      reply.bad_index = static_cast<uint32_t>(req.first + i);
      reply.reason = s.message();
      return reply;
    }
    reply.items.push_back(item);
  }
  return reply;
}

// Initiator side: one batch of grants arrived; once all did, start the data
// transfer itself.
void on_reply(uccl_conn* c, const GrantReply& reply) {
  std::lock_guard<std::mutex> lk(c->mu);
  auto it = c->transfers.find(reply.request_id);
  if (it == c->transfers.end() || it->second.phase != Transfer::Phase::kGranting) return;
  Transfer& t = it->second;
  if (reply.code != StatusCode::kOk) {
    fail(t,
         Status(reply.code, "the target refused piece " + std::to_string(reply.bad_index) + ": " + reply.reason),
         UCCL_P2P_E_REJECTED);
    return;
  }
  size_t batch = reply.first / kMaxBatch;
  size_t expect = std::min<size_t>(kMaxBatch, t.pieces.size() - std::min<size_t>(reply.first, t.pieces.size()));
  if (reply.first % kMaxBatch != 0 || batch >= t.batch_granted.size() || t.batch_granted[batch] ||
      reply.items.size() != expect) {
    fail(t, ProtocolError("uccl_p2p: grant reply does not match the request"));
    return;
  }
  t.batch_granted[batch] = true;
  for (size_t i = 0; i < expect; ++i) t.pieces[reply.first + i].remote = reply.items[i];
  if (--t.batches_left > 0) return;
  Endpoint& ep = *c->engine->ep;
  Status s = t.is_read ? ep.readv_async(c->id, t.pieces, &t.xfer) : ep.writev_async(c->id, t.pieces, &t.xfer);
  if (s.ok()) {
    t.phase = Transfer::Phase::kRunning;
  } else {
    fail(t, s);
  }
}

void handle(uccl_conn* c, const std::vector<uint8_t>& bytes) {
  MessageType type;
  Status s = peek_type(bytes, &type);
  if (s.ok() && type == MessageType::kGrantRequest) {
    GrantRequest req;
    s = decode(bytes, &req);
    if (s.ok()) {
      auto out = encode(serve(c, req));
      s = c->engine->ep->send_message(c->id, out.data(), out.size());
    }
  } else if (s.ok()) {
    GrantReply reply;
    s = decode(bytes, &reply);
    if (s.ok()) on_reply(c, reply);
  }
  if (!s.ok()) TCPX_WARN("uccl_p2p: message from %s:%u: %s", c->peer.ip.c_str(), c->peer.port, s.to_string().c_str());
}

void serve_loop(uccl_conn* c) {
  std::vector<uint8_t> bytes;
  Status s;
  while (!c->stopping.load()) {
    s = c->engine->ep->recv_message(c->id, &bytes, kRecvSliceMs);
    if (s.code() == StatusCode::kTimedOut) continue;
    if (!s.ok()) break;
    handle(c, bytes);
  }
  int code = 0;
  if (c->stopping.load()) {
    s = Status(StatusCode::kNotFound, "connection destroyed");
    code = UCCL_P2P_E_CLOSED;
  }
  // Nobody will answer the grants still awaited: fail them now.
  std::lock_guard<std::mutex> lk(c->mu);
  c->closed = s;
  for (auto& [id, t] : c->transfers)
    if (t.phase == Transfer::Phase::kGranting) fail(t, s, code);
}

}  // namespace

uccl_conn* adopt_connection(uccl_engine* e, ConnId id, const PeerInfo& peer) {
  auto* c = new (std::nothrow) uccl_conn;
  if (c == nullptr) {
    e->ep->close_connection(id);
    return nullptr;
  }
  c->engine = e;
  c->id = id;
  c->peer = peer;
  {
    std::lock_guard<std::mutex> lk(e->mu);
    e->conns.push_back(c);
  }
  c->service = std::thread(serve_loop, c);
  return c;
}

void close_and_free(uccl_conn* c) {
  c->stopping = true;
  // Closing makes recv_message fail at once, so the thread ends promptly.
  c->engine->ep->close_connection(c->id);
  if (c->service.joinable()) c->service.join();
  delete c;
}

}  // namespace tcpx::uccl_p2p
