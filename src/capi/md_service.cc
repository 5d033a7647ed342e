// A connection's md/FIFO service: serves the peer's READ/WRITE md items (look
// the region up, advertise it, answer with FIFO items) and files the peer's
// answers to our own md items. The engine runs it on its progress path
// (Endpoint::serve_messages), in the pass that read the request, so an answer
// leaves in the same pass: no thread of its own, no hand-off.
#include <cstring>
#include <string>

#include "capi/state.h"
#include "capi/wire.h"
#include "common/log.h"

namespace tcpx::capi {
namespace {

constexpr uint8_t kPoisonMagic[16] = {0xff, 'u', 'c', 'c', 'l', '-', 'r', 'e',
                                      'j', 'e', 'c', 't', 'e', 'd', '!', 0xff};

// Validates one requested region of this engine and advertises it.
ReplyItem serve_item(Endpoint& ep, ConnId conn, const RequestItem& req,
                     uint32_t index) {
  ReplyItem r;
  r.index = index;
  r.op = req.op;
  Status s;
  if (req.size == 0) {
    s = InvalidArgument("empty region");
  } else if (req.data_ptr + req.size < req.data_ptr) {
    s = InvalidArgument("region wraps around the address space");
  } else if (req.data_ptr > UINTPTR_MAX || req.size > SIZE_MAX) {
    s = InvalidArgument("region outside the address space");
  } else {
    const void* addr = reinterpret_cast<const void*>(static_cast<uintptr_t>(req.data_ptr));
    MrId mr = 0;
    s = ep.find_mr(addr, static_cast<size_t>(req.size), &mr);
    if (s.ok()) s = ep.advertise(conn, mr, addr, static_cast<size_t>(req.size), &r.item);
  }
  if (!s.ok()) {
    TCPX_INFO("capi: rejecting %s item %u of conn %llu: %s",
              req.op == ItemOp::kRead ? "READ" : "WRITE", index,
              static_cast<unsigned long long>(conn), s.to_string().c_str());
    r.status = static_cast<uint8_t>(s.code() == StatusCode::kOk ? StatusCode::kInternal : s.code());
    std::memset(r.item.bytes, 0, sizeof(r.item.bytes));
  }
  return r;
}

// Answers in growing pieces (for_each_piece), each written as soon as it is
// made (Endpoint::send_message from a service), so item 0 leaves before the
// rest of a long vector is served.
Status serve_requests(uccl_conn* conn, Endpoint& ep, const Batch& b) {
  std::vector<ReplyItem> replies;
  return for_each_piece(b.requests.size(), [&](size_t first, size_t n) {
    replies.clear();
    for (size_t i = first; i < first + n; ++i)
      replies.push_back(serve_item(ep, conn->id, b.requests[i], b.base + static_cast<uint32_t>(i)));
    std::vector<uint8_t> msg = encode_replies(b.seq, b.base + static_cast<uint32_t>(first), replies);
    return ep.send_message(conn->id, msg.data(), msg.size());
  });
}

// Files the peer's answers. Answers nobody asked for are a protocol error.
Status absorb_replies(uccl_conn* conn, const Batch& b) {
  std::lock_guard<std::mutex> lk(conn->mu);
  if (b.seq == 0 || b.seq >= conn->next_seq)
    return ProtocolError("FIFO reply for md vector " + std::to_string(b.seq) + " never sent");
  for (const ReplyItem& r : b.replies) {
    FifoSlot slot;
    slot.present = true;
    slot.status = r.status;
    slot.item = r.item;
    if (r.op == ItemOp::kWrite) {
      if (conn->writes_answered >= conn->writes_requested)
        return ProtocolError("more WRITE answers than WRITE items sent");
      ++conn->writes_answered;
      conn->write_slots.push_back(slot);
    } else if (b.seq == conn->read_seq && r.index < conn->read_table.size()) {
      conn->read_table[r.index] = slot;
    }
    // A READ answer for an older vector is stale: the caller moved on.
  }
  conn->changed.notify_all();
  return Status::Ok();
}

void mark_broken(uccl_conn* conn, const Status& why) {
  std::lock_guard<std::mutex> lk(conn->mu);
  if (conn->broken.ok()) conn->broken = why;
  conn->changed.notify_all();
}

}  // namespace

int to_code(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return UCCL_OK;
    case StatusCode::kInProgress: return UCCL_IN_PROGRESS;
    case StatusCode::kInvalidArgument: return UCCL_E_INVALID;
    case StatusCode::kTimedOut: return UCCL_E_TIMEOUT;
    case StatusCode::kPeerClosed: return UCCL_E_PEER_CLOSED;
    case StatusCode::kProtocolError: return UCCL_E_PROTOCOL;
    case StatusCode::kTransportError: return UCCL_E_TRANSPORT;
    case StatusCode::kNotFound: return UCCL_E_NOT_FOUND;
    case StatusCode::kUnsupported: return UCCL_E_UNSUPPORTED;
    case StatusCode::kCudaError: return UCCL_E_CUDA;
    case StatusCode::kBusy: return UCCL_E_BUSY;
    case StatusCode::kInternal: return UCCL_E_INTERNAL;
    case StatusCode::kRejected: return UCCL_E_REJECTED;
    case StatusCode::kClosed: return UCCL_E_CLOSED;
    case StatusCode::kCancelled: return UCCL_E_CANCELLED;
  }
  return UCCL_E_INTERNAL;
}

FifoItem poisoned_item(uint8_t status) {
  FifoItem item{};
  std::memcpy(item.bytes, kPoisonMagic, sizeof(kPoisonMagic));
  item.bytes[sizeof(kPoisonMagic)] = status;
  return item;
}

bool is_poisoned(const void* item, uint8_t* status) {
  const auto* b = static_cast<const uint8_t*>(item);
  if (std::memcmp(b, kPoisonMagic, sizeof(kPoisonMagic)) != 0) return false;
  *status = b[sizeof(kPoisonMagic)];
  return true;
}

Endpoint::MessageService md_service(uccl_conn* conn, Endpoint* ep) {
  // ep outlives the service: the service is owned by ep's connection.
  Endpoint::MessageService service;
  service.on_message = [conn, ep](std::vector<uint8_t>&& msg) {
    Batch batch;
    Status s = decode(msg, &batch);
    if (s.ok())
      s = batch.type == MsgType::kRequests ? serve_requests(conn, *ep, batch) : absorb_replies(conn, batch);
    if (!s.ok()) {
      // A malformed or hostile message ends this connection only (the engine
      // fails it with s, and on_closed records it).
      TCPX_WARN("capi: closing conn %llu: %s", static_cast<unsigned long long>(conn->id), s.to_string().c_str());
    }
    return s;
  };
  service.on_closed = [conn](const Status& why) {
    TCPX_INFO("capi: conn %llu ends: %s", static_cast<unsigned long long>(conn->id), why.to_string().c_str());
    mark_broken(conn, why);
  };
  return service;
}

void shutdown_conn(uccl_conn* conn) {
  std::shared_ptr<Endpoint> ep;
  {
    std::lock_guard<std::mutex> lk(conn->mu);
    conn->closing = true;
    if (conn->broken.ok()) conn->broken = tcpx::Closed("connection destroyed");
    conn->changed.notify_all();
    ep = std::move(conn->ep);
  }
  // Closing the connection also retires its md service: once close returns,
  // the engine never calls the service (which points at conn) again.
  if (ep) {
    Status s = ep->close_connection(conn->id);
    if (!s.ok() && s.code() != StatusCode::kNotFound)
      TCPX_INFO("capi: close of conn %llu: %s", static_cast<unsigned long long>(conn->id),
                s.to_string().c_str());
  }
}

uint64_t add_transfer(uccl_conn* conn, XferEntry entry) {
  std::lock_guard<std::mutex> lk(conn->mu);
  uint64_t tid = conn->next_tid++;
  conn->xfers.emplace(tid, std::move(entry));
  return tid;
}

}  // namespace tcpx::capi
