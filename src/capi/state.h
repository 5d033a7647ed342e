// The objects behind the C API's opaque handles.
//
// Lifetimes (see the compatibility rules in include/uccl_engine.h):
//  - uccl_engine is a small shell that is never freed. uccl_engine_destroy
//    releases the Endpoint it holds; the shell stays (reachable from a
//    process-wide list) so that an accept parked on it, or a late call with
//    the stale handle, finds valid memory.
//  - uccl_conn is freed by uccl_engine_conn_destroy. Engine destroy shuts its
//    connections down (connection closed with its md service, endpoint reference
//    dropped) but leaves the handles to the user.
//  - Every call takes its own reference to the Endpoint for its duration, so
//    the Endpoint dies when the last user lets go, never under someone.
#ifndef TCPX_CAPI_STATE_H_
#define TCPX_CAPI_STATE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tcpx/endpoint.h"
#include "uccl_engine.h"

struct uccl_engine {
  std::mutex mu;
  std::shared_ptr<tcpx::Endpoint> ep;  // null once destroyed
  bool destroying = false;
  int in_accept = 0;                  // threads inside Endpoint::accept
  std::condition_variable accept_left;  // destroy waits for in_accept == 0
  std::condition_variable park;         // never notified: parked accepts
  int write_slot_timeout_ms = 5000;
  // Serialises connection shutdown between engine destroy and conn_destroy.
  std::mutex lifecycle_mu;
  std::set<uccl_conn*> conns;  // guarded by lifecycle_mu

  std::mutex notif_mu;
  std::deque<notify_msg_t> notifs;  // drained from the endpoint, not yet handed out

  std::shared_ptr<tcpx::Endpoint> endpoint() {
    std::lock_guard<std::mutex> lk(mu);
    return ep;
  }
};

struct uccl_mr {
  uccl_engine* engine = nullptr;
  tcpx::MrId id = 0;
  uintptr_t base = 0;
  size_t size = 0;
};

namespace tcpx::capi {

// The answer to one READ item, as get_fifo_item hands it out.
struct FifoSlot {
  bool present = false;
  uint8_t status = 0;  // tcpx::StatusCode of a rejection; 0 = item valid
  FifoItem item{};
};

// One transfer id handed to the user.
struct XferEntry {
  bool has_engine_id = false;
  XferId engine_id = 0;
  bool final = false;
  Status result;  // final result (OK or the error; REJECTED when the target refused it)
};

}  // namespace tcpx::capi

struct uccl_conn {
  uccl_engine* engine = nullptr;
  tcpx::ConnId id = 0;
  tcpx::PeerInfo peer;

  std::mutex mu;
  std::condition_variable changed;  // FIFO replies arrived, or the conn broke
  std::shared_ptr<tcpx::Endpoint> ep;  // dropped at shutdown
  bool closing = false;
  tcpx::Status broken;  // sticky once the connection failed (md service's on_closed)

  // md vectors this side sent; READ answers of the latest READ vector.
  uint32_t next_seq = 1;
  uint32_t read_seq = 0;
  std::vector<tcpx::capi::FifoSlot> read_table;
  // WRITE answers in request order, waiting for uccl_engine_write.
  uint64_t writes_requested = 0;  // WRITE items sent
  uint64_t writes_answered = 0;   // their answers received
  std::deque<tcpx::capi::FifoSlot> write_slots;

  // Transfer ids: live/failed ones in `xfers`; recent successes only as ids.
  uint64_t next_tid = 1;
  std::unordered_map<uint64_t, tcpx::capi::XferEntry> xfers;
  std::unordered_set<uint64_t> recent_ok;
  std::deque<uint64_t> recent_ok_order;

  std::shared_ptr<tcpx::Endpoint> endpoint() {
    std::lock_guard<std::mutex> lk(mu);
    return closing ? nullptr : ep;
  }
};

namespace tcpx::capi {

// StatusCode -> enum uccl_status.
int to_code(StatusCode code);
inline int to_code(const Status& s) { return to_code(s.code()); }

// A 64-byte item that marks a READ item the target rejected; reading with it
// fails locally with the rejection instead of going to the peer.
FifoItem poisoned_item(uint8_t status);
bool is_poisoned(const void* item, uint8_t* status);

// The connection's md/FIFO service, which the engine runs on its progress
// path once uccl_engine_start_listener installs it (md_service.cc).
Endpoint::MessageService md_service(uccl_conn* conn, Endpoint* ep);
// Marks the conn closing, wakes waiters, closes the connection (which retires
// its md service) and drops the endpoint reference. Idempotent.
void shutdown_conn(uccl_conn* conn);
// Records a new transfer id for `entry`.
uint64_t add_transfer(uccl_conn* conn, XferEntry entry);

// Engines whose notifications uccl_engine_get_notifs() drains.
void register_live_engine(uccl_engine* e);
void unregister_live_engine(uccl_engine* e);
// Destroyed shells, kept reachable on purpose (never freed).
void keep_destroyed_engine(uccl_engine* e);

}  // namespace tcpx::capi

#endif  // TCPX_CAPI_STATE_H_
