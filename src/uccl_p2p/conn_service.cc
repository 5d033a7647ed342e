// A connection's grant service: it answers the connection's application
// messages, so that the target of a read or write never has to call anything
// and the initiator's transfers move on from granting to running without a
// caller polling. The Endpoint runs it on its progress path
// (Endpoint::serve_messages), in the pass that read the message, on whichever
// thread drives at the time: no thread per connection, and a grant reply
// leaves in the same pass as the request it answers. So nothing here blocks,
// and conn->mu is taken only for moments (see state.h for who must not hold
// it).
#include <new>
#include <string>

#include "common/log.h"
#include "uccl_p2p/messages.h"
#include "uccl_p2p/state.h"

namespace tcpx::uccl_p2p {
namespace {

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
// transfer itself (on the progress path the vector transfer's ops queue and
// start with the next pass).
void on_reply(uccl_conn* c, const GrantReply& reply) {
  std::lock_guard<std::mutex> lk(c->mu);
  auto it = c->transfers.find(reply.request_id);
  if (it == c->transfers.end() || it->second.phase != Transfer::Phase::kGranting) return;
  Transfer& t = it->second;
  if (reply.code != StatusCode::kOk) {
    fail(t, tcpx::Rejected("the target refused piece " + std::to_string(reply.bad_index) + ": " +
                           tcpx::status_code_name(reply.code) + ": " + reply.reason));
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

// One message from the peer. An error (a message that is not ours, or
// malformed) fails this connection, as the C API's md service does: a peer
// that breaks the protocol is not trusted with further grants, and its
// transfers still waiting end with the error (on_closed) instead of waiting
// for a reply that may never come. Other connections are not affected.
Status handle(uccl_conn* c, const std::vector<uint8_t>& bytes) {
  MessageType type;
  TCPX_RETURN_IF_ERROR(peek_type(bytes, &type));
  if (type == MessageType::kGrantRequest) {
    GrantRequest req;
    TCPX_RETURN_IF_ERROR(decode(bytes, &req));
    auto out = encode(serve(c, req));
    return c->engine->ep->send_message(c->id, out.data(), out.size());
  }
  GrantReply reply;
  TCPX_RETURN_IF_ERROR(decode(bytes, &reply));
  on_reply(c, reply);
  return Status::Ok();
}

// The connection failed or was closed: nobody will answer the grants still
// awaited, so fail them now, and refuse new transfers from here on.
void on_closed(uccl_conn* c, const Status& why) {
  std::lock_guard<std::mutex> lk(c->mu);
  c->closed = why;
  for (auto& [id, t] : c->transfers)
    if (t.phase == Transfer::Phase::kGranting) fail(t, why);
}

Endpoint::MessageService grant_service(uccl_conn* c) {
  // c outlives the service: close_and_free closes the connection, which
  // retires the service, before it frees c.
  Endpoint::MessageService service;
  service.on_message = [c](std::vector<uint8_t>&& bytes) {
    Status s = handle(c, bytes);
    if (!s.ok())
      TCPX_WARN("uccl_p2p: closing the connection to %s:%u: %s", c->peer.ip.c_str(), c->peer.port,
                s.to_string().c_str());
    return s;
  };
  service.on_closed = [c](const Status& why) { on_closed(c, why); };
  return service;
}

}  // namespace

uccl_conn* adopt_connection(uccl_engine* e, ConnId id, const PeerInfo& peer) {
  auto* c = new (std::nothrow) uccl_conn;
  if (c == nullptr) {
    (void)e->ep->close_connection(id);  // just made: cannot fail
    return nullptr;
  }
  c->engine = e;
  c->id = id;
  c->peer = peer;
  // Messages that arrived before (the peer may ask at once) are served first.
  Status s = e->ep->serve_messages(id, grant_service(c));
  if (!s.ok()) {
    TCPX_WARN("uccl_p2p: serving the connection to %s:%u: %s", peer.ip.c_str(), peer.port, s.to_string().c_str());
    close_and_free(c);
    return nullptr;
  }
  std::lock_guard<std::mutex> lk(e->mu);
  e->conns.push_back(c);
  return c;
}

void close_and_free(uccl_conn* c) {
  // Retires the grant service too: once close_connection returns, the engine
  // never calls it (and so never touches c) again. Its on_closed ran, failing
  // the transfers still granting. Called with no lock held: the close runs
  // that on_closed, which takes c->mu.
  Status s = c->engine->ep->close_connection(c->id);
  if (!s.ok()) TCPX_WARN("uccl_p2p: closing connection %llu: %s", static_cast<unsigned long long>(c->id),
                         s.to_string().c_str());
  delete c;
}

}  // namespace tcpx::uccl_p2p
