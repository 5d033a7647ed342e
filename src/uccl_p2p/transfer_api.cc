// One-sided reads and writes of libuccl_p2p.so.
//
// A transfer has two steps. The initiator sends the FifoItems to the target
// (GRANT_REQUEST); the target checks each against the regions it prepared
// and answers with its own tcpx advertisements (GRANT_REPLY, handled by the
// grant service in conn_service.cc, which the Endpoint runs on its progress
// path), which then run as one tcpx vector read or write. So the caller's
// call returns at once, and a forged item fails only its own transfer, at the
// target's word.
#include <algorithm>
#include <cstring>
#include <string>

#include "common/c_string.h"
#include "common/log.h"
#include "uccl_p2p/messages.h"
#include "uccl_p2p/state.h"

using tcpx::Status;
using namespace tcpx::uccl_p2p;

namespace {

// Checks the caller's vectors and turns them into tcpx pieces (remote parts
// come later, from the grants) plus the grant references to send.
int make_pieces(uccl_conn_t* conn, const std::vector<uccl_mr_t>& mr_ids, const std::vector<void*>& addr_v,
                const std::vector<size_t>& size_v, const std::vector<FifoItem>& fifo_items, int num_iovs,
                std::vector<tcpx::IoPiece>* pieces, std::vector<GrantRef>* refs) {
  if (num_iovs <= 0) return UCCL_P2P_E_INVALID;
  auto n = static_cast<size_t>(num_iovs);
  if (mr_ids.size() < n || addr_v.size() < n || size_v.size() < n || fifo_items.size() < n)
    return UCCL_P2P_E_INVALID;
  pieces->resize(n);
  refs->resize(n);
  uccl_engine* e = conn->engine;
  std::lock_guard<std::mutex> lk(e->mu);
  for (size_t i = 0; i < n; ++i) {
    auto it = e->regions.find(mr_ids[i]);
    if (it == e->regions.end()) return UCCL_P2P_E_NOT_FOUND;
    const Region& r = it->second;
    auto p = reinterpret_cast<uintptr_t>(addr_v[i]);
    if (size_v[i] == 0 || p < r.base || p - r.base > r.size || size_v[i] > r.size - (p - r.base))
      return UCCL_P2P_E_INVALID;
    Status s = decode_token(fifo_items[i], &(*refs)[i]);
    if (!s.ok()) return UCCL_P2P_E_INVALID;
    (*pieces)[i] = tcpx::IoPiece{r.mr, addr_v[i], size_v[i], {}};
  }
  return UCCL_P2P_OK;
}

int post(bool is_read, uccl_conn_t* conn, const std::vector<uccl_mr_t>& mr_ids, const std::vector<void*>& addr_v,
         const std::vector<size_t>& size_v, const std::vector<FifoItem>& fifo_items, int num_iovs,
         uint64_t* transfer_id, const std::vector<char*>& ipc_bufs) {
  const char* op = is_read ? "read" : "write";
  if (conn == nullptr || transfer_id == nullptr) return UCCL_P2P_E_INVALID;
  if (!ipc_bufs.empty()) {
    TCPX_WARN("uccl_p2p: %s: IPC buffers given, but there is no IPC path (uccl_engine_conn_is_local is false)", op);
    return UCCL_P2P_E_UNSUPPORTED;
  }
  Transfer t;
  std::vector<GrantRef> refs;
  int rc = make_pieces(conn, mr_ids, addr_v, size_v, fifo_items, num_iovs, &t.pieces, &refs);
  if (rc != UCCL_P2P_OK) {
    TCPX_WARN("uccl_p2p: %s: invalid local piece, registration or FifoItem (code %d)", op, rc);
    return rc;
  }
  t.is_read = is_read;
  t.batches_left = (refs.size() + kMaxBatch - 1) / kMaxBatch;
  t.batch_granted.assign(t.batches_left, false);

  // Registered before the requests leave, so that no reply can miss it; after
  // checking conn->closed under conn->mu, so that a connection failing now
  // fails it (the grant service's on_closed) rather than leaving it waiting.
  uint64_t id;
  {
    std::lock_guard<std::mutex> lk(conn->mu);
    if (!conn->closed.ok()) return to_code(conn->closed);
    id = conn->next_transfer_id++;
    conn->transfers.emplace(id, std::move(t));
  }
  // Sent without conn->mu: nothing may hold it while calling the Endpoint
  // (state.h).
  for (size_t first = 0; first < refs.size(); first += kMaxBatch) {
    GrantRequest req;
    req.request_id = id;
    req.first = static_cast<uint32_t>(first);
    req.refs.assign(refs.begin() + first, refs.begin() + std::min(refs.size(), first + kMaxBatch));
    auto bytes = encode(req);
    Status s = conn->engine->ep->send_message(conn->id, bytes.data(), bytes.size());
    if (!s.ok()) {
      std::lock_guard<std::mutex> lk(conn->mu);
      conn->transfers.erase(id);  // a reply to an earlier batch finds nothing
      TCPX_WARN("uccl_p2p: %s: %s", op, s.to_string().c_str());
      return to_code(s);
    }
  }
  *transfer_id = id;
  return UCCL_P2P_OK;
}

// Brings a transfer up to date. Asks the engine without conn->mu held: a
// poll may run a progress pass on this thread, which may call this
// connection's grant service, which takes conn->mu.
void refresh(uccl_conn_t* conn, uint64_t transfer_id) {
  tcpx::XferId xfer = 0;
  Transfer::Phase phase;
  {
    std::lock_guard<std::mutex> lk(conn->mu);
    auto it = conn->transfers.find(transfer_id);
    if (it == conn->transfers.end()) return;
    phase = it->second.phase;
    xfer = it->second.xfer;
  }
  tcpx::Endpoint& ep = *conn->engine->ep;
  if (phase == Transfer::Phase::kGranting) {
    // A caller polling for a transfer still waiting for its grants drives
    // too, when nobody else does: the reply is then read, and the data
    // transfer posted, by the thread that waits for it.
    (void)ep.progress();
    return;
  }
  if (phase != Transfer::Phase::kRunning) return;
  Status s = ep.poll_async(xfer);
  if (s.in_progress()) return;
  std::lock_guard<std::mutex> lk(conn->mu);
  auto it = conn->transfers.find(transfer_id);
  if (it == conn->transfers.end() || it->second.phase != Transfer::Phase::kRunning) return;
  // Two threads polled the same transfer: the engine gave the final answer to
  // the other one (this one got NOT_FOUND), which records it.
  if (s.code() == tcpx::StatusCode::kNotFound) return;
  if (s.ok()) {
    it->second.phase = Transfer::Phase::kDone;
  } else {
    fail(it->second, s);
  }
}

// The state of a transfer as refresh() left it, retiring it once it
// succeeded. Called with conn->mu held; calls nothing in the Endpoint.
int result_locked(uccl_conn_t* conn, uint64_t transfer_id, std::string* why) {
  auto it = conn->transfers.find(transfer_id);
  if (it == conn->transfers.end()) {
    if (why) *why = "unknown transfer id " + std::to_string(transfer_id);
    return UCCL_P2P_E_NOT_FOUND;
  }
  Transfer& t = it->second;
  switch (t.phase) {
    case Transfer::Phase::kGranting:
    case Transfer::Phase::kRunning:
      return UCCL_P2P_IN_PROGRESS;
    case Transfer::Phase::kDone:
      conn->transfers.erase(it);
      return UCCL_P2P_OK;
    case Transfer::Phase::kFailed:
      break;
  }
  if (why) *why = t.error.to_string();
  return t.code;
}

}  // namespace

int uccl_engine_read_vector(uccl_conn_t* conn, std::vector<uccl_mr_t> mr_ids, std::vector<void*> dst_v,
                            std::vector<size_t> size_v, std::vector<FifoItem> fifo_items, int num_iovs,
                            uint64_t* transfer_id, std::vector<char*> ipc_bufs) {
  return post(true, conn, mr_ids, dst_v, size_v, fifo_items, num_iovs, transfer_id, ipc_bufs);
}

int uccl_engine_write_vector(uccl_conn_t* conn, std::vector<uccl_mr_t> mr_ids, std::vector<void*> dst_v,
                             std::vector<size_t> size_v, std::vector<FifoItem> fifo_items, int num_iovs,
                             uint64_t* transfer_id, std::vector<char*> ipc_bufs) {
  return post(false, conn, mr_ids, dst_v, size_v, fifo_items, num_iovs, transfer_id, ipc_bufs);
}

int uccl_engine_read(uccl_conn_t* conn, uccl_mr_t mr, void const* data, size_t size, FifoItem fifo_item,
                     uint64_t* transfer_id) {
  return post(true, conn, {mr}, {const_cast<void*>(data)}, {size}, {fifo_item}, 1, transfer_id, {});
}

int uccl_engine_write(uccl_conn_t* conn, uccl_mr_t mr, void const* data, size_t size, FifoItem fifo_item,
                      uint64_t* transfer_id) {
  return post(false, conn, {mr}, {const_cast<void*>(data)}, {size}, {fifo_item}, 1, transfer_id, {});
}

bool uccl_engine_xfer_status(uccl_conn_t* conn, uint64_t transfer_id) {
  if (conn == nullptr) return false;
  refresh(conn, transfer_id);
  std::lock_guard<std::mutex> lk(conn->mu);
  std::string why;
  int rc = result_locked(conn, transfer_id, &why);
  if (rc < 0) {
    // NIXL reads this as a boolean: a failure stays "not done" (never "done"
    // over wrong data), said once here and told by uccl_engine_xfer_result().
    auto it = conn->transfers.find(transfer_id);
    if (it != conn->transfers.end() && !it->second.failure_logged) {
      it->second.failure_logged = true;
      TCPX_WARN("uccl_p2p: transfer %lu failed: %s", static_cast<unsigned long>(transfer_id), why.c_str());
    }
  }
  return rc == UCCL_P2P_OK;
}

int uccl_engine_xfer_result(uccl_conn_t* conn, uint64_t transfer_id, char* why, size_t why_len) {
  if (conn == nullptr) return UCCL_P2P_E_INVALID;
  std::string reason;
  int rc;
  refresh(conn, transfer_id);
  {
    std::lock_guard<std::mutex> lk(conn->mu);
    rc = result_locked(conn, transfer_id, &reason);
    if (rc < 0) conn->transfers.erase(transfer_id);  // final: retire it
  }
  tcpx::copy_c_string(reason, why, why_len);
  return rc;
}

// Two-sided paths: disabled in UCCL's engine as well (documented -1).
int uccl_engine_send(uccl_conn_t*, uccl_mr_t, void const*, size_t, uint64_t*) { return -1; }
int uccl_engine_send_vector(uccl_conn_t*, std::vector<uccl_mr_t>, std::vector<void const*>, std::vector<size_t>, int,
                            uint64_t*) {
  return -1;
}
int uccl_engine_recv(uccl_conn_t*, uccl_mr_t, void*, size_t) { return -1; }
