// C entry points for a connection: its md service, md vectors and FIFO items,
// transfers and their completion.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "capi/state.h"
#include "capi/wire.h"
#include "common/c_string.h"
#include "common/log.h"

using tcpx::Status;
using tcpx::StatusCode;
using tcpx::capi::to_code;
using tcpx::capi::XferEntry;

namespace {

constexpr size_t kRecentOkKept = 1 << 16;  // successes remembered for re-polls
constexpr size_t kFailedKept = 1 << 16;    // failures kept for xfer_result

// Whether [data, data+size) lies inside the registration.
bool inside(const uccl_mr* mr, const void* data, size_t size) {
  auto p = reinterpret_cast<uintptr_t>(data);
  return p >= mr->base && size <= mr->size && p - mr->base <= mr->size - size;
}

int check_local(uccl_conn* c, uccl_mr* mr, const void* data, size_t size,
                uint64_t* transfer_id) {
  if (c == nullptr || mr == nullptr || data == nullptr || size == 0 || transfer_id == nullptr)
    return UCCL_E_INVALID;
  if (mr->engine != c->engine) return UCCL_E_INVALID;
  if (!inside(mr, data, size)) return UCCL_E_INVALID;
  return UCCL_OK;
}

uint64_t failed_transfer(uccl_conn* c, Status why) {
  XferEntry e;
  e.final = true;
  e.result = std::move(why);
  return tcpx::capi::add_transfer(c, std::move(e));
}

uint64_t live_transfer(uccl_conn* c, tcpx::XferId id) {
  XferEntry e;
  e.has_engine_id = true;
  e.engine_id = id;
  return tcpx::capi::add_transfer(c, std::move(e));
}

// The target's refusal, as the transfer's result: REJECTED, naming the
// target's reason (the code it put in the FIFO answer).
Status rejection(const char* op, uint8_t code) {
  const char* why = tcpx::is_status_code(code) ? tcpx::status_code_name(static_cast<StatusCode>(code)) : "no reason given";
  return tcpx::Rejected(std::string("target rejected the ") + op + " request: " + why);
}

// Brings a live entry up to date. Asks the engine without conn->mu held: a
// poll may run a progress pass, which may call this connection's md service,
// which takes conn->mu. Logs a failure once.
void refresh(uccl_conn* c, uint64_t tid) {
  tcpx::XferId engine_id = 0;
  std::shared_ptr<tcpx::Endpoint> ep;
  {
    std::lock_guard<std::mutex> lk(c->mu);
    auto it = c->xfers.find(tid);
    if (it == c->xfers.end() || it->second.final || !it->second.has_engine_id) return;
    engine_id = it->second.engine_id;
    ep = c->closing ? nullptr : c->ep;
  }
  Status s = ep ? ep->poll_async(engine_id) : tcpx::Closed("connection destroyed");
  if (s.in_progress()) return;
  std::lock_guard<std::mutex> lk(c->mu);
  auto it = c->xfers.find(tid);
  if (it == c->xfers.end() || it->second.final) return;
  // Two threads polled the same id: the engine gave the final answer to the
  // other one (this one got NOT_FOUND), which records it.
  if (ep && s.code() == StatusCode::kNotFound) return;
  it->second.final = true;
  it->second.result = s;
  if (!s.ok())
    TCPX_WARN("capi: transfer %llu on conn %llu failed: %s", static_cast<unsigned long long>(tid),
              static_cast<unsigned long long>(c->id), s.to_string().c_str());
}

void remember_ok(uccl_conn* c, uint64_t tid) {
  c->xfers.erase(tid);
  c->recent_ok.insert(tid);
  c->recent_ok_order.push_back(tid);
  if (c->recent_ok_order.size() > kRecentOkKept) {
    c->recent_ok.erase(c->recent_ok_order.front());
    c->recent_ok_order.pop_front();
  }
}

void forget_old_failures(uccl_conn* c) {
  if (c->xfers.size() <= kFailedKept) return;
  // Rare: drop the oldest finished failures (smallest ids) to stay bounded.
  std::vector<uint64_t> finished;
  for (auto& [tid, e] : c->xfers)
    if (e.final) finished.push_back(tid);
  std::sort(finished.begin(), finished.end());
  size_t drop = std::min(finished.size(), c->xfers.size() - kFailedKept);
  for (size_t i = 0; i < drop; ++i) c->xfers.erase(finished[i]);
}

// With lk (on c->mu) held: drives the engine on this thread until
// answered() (evaluated under c->mu) holds or TCPX_SPIN_US has passed. The
// md service's answer is usually one round trip away (8 us on loopback),
// while a caller that polls sleeps between tries (NIXL: 10 us asked, 60 us
// with the default timer slack; 1 ms in older releases). c->mu is let go
// meanwhile: a pass may call this connection's md service, which takes it.
template <class Answered>
void drive_until_answered(uccl_conn* c, std::unique_lock<std::mutex>& lk, Answered answered) {
  std::shared_ptr<tcpx::Endpoint> ep = c->ep;
  if (!ep) return;
  lk.unlock();
  (void)ep->drive_until([c, &answered] {
    std::lock_guard<std::mutex> g(c->mu);
    return answered();
  });
  lk.lock();
}

bool is_read(uccl_msg_type op) { return op == UCCL_READ || op == UCCL_VECTOR_READ; }
bool is_write(uccl_msg_type op) { return op == UCCL_WRITE || op == UCCL_VECTOR_WRITE; }

}  // namespace

extern "C" {

int uccl_engine_start_listener(uccl_conn_t* c) {
  if (c == nullptr) return UCCL_E_INVALID;
  auto ep = c->endpoint();
  if (!ep) return UCCL_E_CLOSED;
  // No thread: the engine serves the md/FIFO traffic on its progress path.
  Status s = ep->serve_messages(c->id, tcpx::capi::md_service(c, ep.get()));
  if (s.code() == StatusCode::kNotFound) return UCCL_E_CLOSED;
  return to_code(s);
}

void uccl_engine_conn_destroy(uccl_conn_t* c) {
  if (c == nullptr) return;
  uccl_engine* e = c->engine;
  std::lock_guard<std::mutex> lk(e->lifecycle_mu);
  tcpx::capi::shutdown_conn(c);
  e->conns.erase(c);
  delete c;
}

int uccl_engine_send_tx_md_vector(uccl_conn_t* c, md_t* md, size_t count) {
  if (c == nullptr || md == nullptr || count == 0 || count > UCCL_MAX_MD_VECTOR)
    return UCCL_E_INVALID;
  std::vector<tcpx::capi::RequestItem> items(count);
  size_t reads = 0, writes = 0;
  for (size_t i = 0; i < count; ++i) {
    if (is_read(md[i].op)) {
      items[i].op = tcpx::capi::ItemOp::kRead;
      ++reads;
    } else if (is_write(md[i].op)) {
      items[i].op = tcpx::capi::ItemOp::kWrite;
      ++writes;
    } else {
      return UCCL_E_INVALID;
    }
    items[i].data_ptr = md[i].data.tx_data.data_ptr;
    items[i].size = md[i].data.tx_data.data_size;
  }
  std::shared_ptr<tcpx::Endpoint> ep;
  uint32_t seq;
  {
    std::lock_guard<std::mutex> lk(c->mu);
    if (c->closing) return UCCL_E_CLOSED;
    if (!c->broken.ok()) return to_code(c->broken);
    ep = c->ep;
    seq = c->next_seq++;
    if (reads > 0) {
      c->read_seq = seq;
      c->read_table.assign(count, tcpx::capi::FifoSlot{});
    }
    c->writes_requested += writes;
  }
  Status s = tcpx::capi::for_each_piece(count, [&](size_t first, size_t n) {
    std::vector<uint8_t> msg =
        tcpx::capi::encode_requests(seq, static_cast<uint32_t>(first), items.data() + first, n);
    return ep->send_message(c->id, msg.data(), msg.size());
  });
  if (!s.ok()) {
    TCPX_WARN("uccl_engine_send_tx_md_vector: %s", s.to_string().c_str());
    return to_code(s);
  }
  return UCCL_OK;
}

int uccl_engine_send_tx_md(uccl_conn_t* c, md_t* md) {
  if (c == nullptr || md == nullptr) return UCCL_E_INVALID;
  if (md->op == UCCL_NOTIFY) return uccl_engine_send_notif(c, &md->data.notify_data);
  return uccl_engine_send_tx_md_vector(c, md, 1);
}

int uccl_engine_get_fifo_item(uccl_conn_t* c, int id, void* fifo_item) {
  if (c == nullptr || fifo_item == nullptr || id < 0) return UCCL_E_INVALID;
  std::unique_lock<std::mutex> lk(c->mu);
  if (static_cast<size_t>(id) >= c->read_table.size()) return UCCL_E_INVALID;
  if (!c->read_table[static_cast<size_t>(id)].present && !c->closing && c->broken.ok()) {
    // Not here yet: the first call returns an answer that comes within
    // TCPX_SPIN_US. Answered also when it never will be: the connection
    // closes or broke, or a newer vector replaced the table.
    const auto i = static_cast<size_t>(id);
    drive_until_answered(c, lk, [c, i] {
      return i >= c->read_table.size() || c->read_table[i].present || c->closing || !c->broken.ok();
    });
    if (i >= c->read_table.size()) return UCCL_E_INVALID;
  }
  const tcpx::capi::FifoSlot& slot = c->read_table[static_cast<size_t>(id)];
  if (!slot.present) {
    if (c->closing) return UCCL_E_CLOSED;
    return c->broken.ok() ? UCCL_IN_PROGRESS : to_code(c->broken);
  }
  if (slot.status != 0) {
    tcpx::FifoItem poison = tcpx::capi::poisoned_item(slot.status);
    std::memcpy(fifo_item, poison.bytes, FIFO_ITEM_SIZE);
    return UCCL_E_REJECTED;
  }
  std::memcpy(fifo_item, slot.item.bytes, FIFO_ITEM_SIZE);
  return UCCL_OK;
}

int uccl_engine_read(uccl_conn_t* c, uccl_mr_t* mr, const void* data, size_t size,
                     void* slot_item, uint64_t* transfer_id) {
  if (slot_item == nullptr) return UCCL_E_INVALID;
  if (int rc = check_local(c, mr, data, size, transfer_id); rc != UCCL_OK) return rc;
  uint8_t code = 0;
  if (tcpx::capi::is_poisoned(slot_item, &code)) {
    *transfer_id = failed_transfer(c, rejection("READ", code));
    return UCCL_OK;
  }
  auto ep = c->endpoint();
  if (!ep) return UCCL_E_CLOSED;
  tcpx::FifoItem remote;
  std::memcpy(remote.bytes, slot_item, FIFO_ITEM_SIZE);
  tcpx::XferId id = 0;
  Status s = ep->read_async(c->id, mr->id, const_cast<void*>(data), size, remote, &id);
  if (!s.ok()) return to_code(s);
  *transfer_id = live_transfer(c, id);
  return UCCL_OK;
}

int uccl_engine_write(uccl_conn_t* c, uccl_mr_t* mr, const void* data, size_t size,
                      uint64_t* transfer_id) {
  if (int rc = check_local(c, mr, data, size, transfer_id); rc != UCCL_OK) return rc;
  tcpx::capi::FifoSlot slot;
  std::shared_ptr<tcpx::Endpoint> ep;
  {
    std::unique_lock<std::mutex> lk(c->mu);
    uint64_t consumed = c->writes_answered - c->write_slots.size();
    if (consumed >= c->writes_requested) return UCCL_E_INVALID;  // no WRITE item sent
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(c->engine->write_slot_timeout_ms);
    auto answered = [c] { return !c->write_slots.empty() || c->closing || !c->broken.ok(); };
    // Read the answer on this thread if it comes within TCPX_SPIN_US; else
    // sleep until the engine's thread files it.
    if (!answered()) drive_until_answered(c, lk, answered);
    bool ready = c->changed.wait_until(lk, deadline, answered);
    if (c->write_slots.empty()) {
      if (c->closing) return UCCL_E_CLOSED;
      if (!c->broken.ok()) return to_code(c->broken);
      return ready ? UCCL_E_INTERNAL : UCCL_E_TIMEOUT;
    }
    slot = c->write_slots.front();
    c->write_slots.pop_front();
    if (c->closing) return UCCL_E_CLOSED;
    ep = c->ep;
  }
  if (slot.status != 0) {
    *transfer_id = failed_transfer(c, rejection("WRITE", slot.status));
    return UCCL_OK;
  }
  tcpx::XferId id = 0;
  Status s = ep->write_async(c->id, mr->id, data, size, slot.item, &id);
  if (!s.ok()) return to_code(s);
  *transfer_id = live_transfer(c, id);
  return UCCL_OK;
}

int uccl_engine_send(uccl_conn_t* c, uccl_mr_t* mr, const void* data, size_t size,
                     uint64_t* transfer_id) {
  if (int rc = check_local(c, mr, data, size, transfer_id); rc != UCCL_OK) return rc;
  auto ep = c->endpoint();
  if (!ep) return UCCL_E_CLOSED;
  tcpx::XferId id = 0;
  Status s = ep->send_async(c->id, mr->id, data, size, &id);
  if (!s.ok()) return to_code(s);
  *transfer_id = live_transfer(c, id);
  return UCCL_OK;
}

int uccl_engine_recv(uccl_conn_t* c, uccl_mr_t* mr, void* data, size_t max_size) {
  uint64_t unused = 0;
  if (int rc = check_local(c, mr, data, max_size, &unused); rc != UCCL_OK) return rc;
  auto ep = c->endpoint();
  if (!ep) return UCCL_E_CLOSED;
  tcpx::XferId id = 0;
  Status s = ep->recv_async(c->id, mr->id, data, max_size, &id);
  if (!s.ok()) return to_code(s);
  // Waits in slices so that destroying the connection wakes this call; a dead
  // peer ends the transfer with an error by itself.
  constexpr int kSliceMs = 100;
  for (;;) {
    s = ep->wait(id, kSliceMs);
    if (!s.in_progress()) break;
    std::lock_guard<std::mutex> lk(c->mu);
    if (c->closing) return UCCL_E_CLOSED;
  }
  if (!s.ok()) TCPX_WARN("uccl_engine_recv: %s", s.to_string().c_str());
  return to_code(s);
}

int uccl_engine_xfer_status(uccl_conn_t* c, uint64_t tid) {
  if (c == nullptr) return 0;
  refresh(c, tid);
  std::lock_guard<std::mutex> lk(c->mu);
  auto it = c->xfers.find(tid);
  if (it == c->xfers.end()) return c->recent_ok.count(tid) ? 1 : 0;
  if (!it->second.final || !it->second.result.ok()) {
    forget_old_failures(c);
    return 0;
  }
  remember_ok(c, tid);
  return 1;
}

int uccl_engine_xfer_result(uccl_conn_t* c, uint64_t tid, char* msg, size_t msg_len) {
  if (c == nullptr) return UCCL_E_INVALID;
  Status s;
  refresh(c, tid);
  {
    std::lock_guard<std::mutex> lk(c->mu);
    auto it = c->xfers.find(tid);
    if (it == c->xfers.end()) {
      s = c->recent_ok.count(tid) ? Status::Ok()
                                  : Status(StatusCode::kNotFound, "unknown transfer id");
    } else {
      s = it->second.final ? it->second.result : Status(StatusCode::kInProgress, "in progress");
      if (it->second.final && s.ok()) remember_ok(c, tid);
    }
  }
  tcpx::copy_c_string(s.to_string(), msg, msg_len);
  return to_code(s);
}

}  // extern "C"
