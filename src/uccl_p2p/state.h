// The objects behind uccl_engine_t and uccl_conn_t of libuccl_p2p.so.
//
// Ownership: an engine owns its Endpoint, its registrations, its grants and
// its connections; a connection owns its transfers in flight. A connection's
// application messages (GRANT_REQUEST / GRANT_REPLY) are answered by its
// grant service, which the Endpoint runs on its progress path
// (Endpoint::serve_messages): no thread per connection.
//
// Lock order: engine.mu before conn.mu; the grant table's own lock is
// innermost. The grant service runs under the Endpoint's progress token and
// takes conn.mu, so no thread may hold conn.mu while calling an Endpoint
// function that may drive progress (and so run the service on this very
// thread): poll_async, wait, the blocking transfers, close_connection, dereg,
// serve_messages and the *_async calls (which start ops on the caller's
// thread when nobody drives).
#ifndef TCPX_UCCL_P2P_STATE_H_
#define TCPX_UCCL_P2P_STATE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "tcpx/endpoint.h"
#include "uccl_p2p/grant_table.h"
#include "uccl_p2p/uccl_engine.h"

namespace tcpx::uccl_p2p {

// A uccl_mr_t: the tcpx registration and the range it covers.
struct Region {
  MrId mr = 0;
  uintptr_t base = 0;
  size_t size = 0;
};

// A read or write from its uccl_engine_*_vector call to its final answer.
// It first waits for the target's grants (one reply per batch), then runs as
// one tcpx vector transfer.
struct Transfer {
  // kDone: the engine said OK; the next status/result call reports and
  // retires it.
  enum class Phase { kGranting, kRunning, kDone, kFailed };
  bool is_read = false;
  Phase phase = Phase::kGranting;
  std::vector<IoPiece> pieces;  // remote filled in from the grants
  std::vector<bool> batch_granted;
  size_t batches_left = 0;
  XferId xfer = 0;  // valid in kRunning
  Status error;     // valid in kFailed, with its uccl_p2p_status code
  int code = 0;
  bool failure_logged = false;
};

// Maps tcpx status codes to the header's uccl_p2p_status values.
int to_code(const Status& s);

// Ends a transfer with an error; its code is to_code(s).
void fail(Transfer& t, Status s);

}  // namespace tcpx::uccl_p2p

struct uccl_conn {
  uccl_engine* engine = nullptr;
  tcpx::ConnId id = 0;
  tcpx::PeerInfo peer;

  std::mutex mu;  // everything below
  std::map<uint64_t, tcpx::uccl_p2p::Transfer> transfers;
  uint64_t next_transfer_id = 1;
  tcpx::Status closed;  // sticky: not OK once the connection failed or closed (grant service's on_closed)
};

struct uccl_engine {
  std::unique_ptr<tcpx::Endpoint> ep;
  std::atomic<bool> accept_stopped{false};
  tcpx::uccl_p2p::GrantTable grants;

  std::mutex mu;  // regions, conns, next_mr
  std::map<uccl_mr_t, tcpx::uccl_p2p::Region> regions;
  uccl_mr_t next_mr = 1;
  std::vector<uccl_conn*> conns;
};

namespace tcpx::uccl_p2p {

// Creates the connection object for an established tcpx connection, installs
// its grant service on the Endpoint and adds it to the engine
// (conn_service.cc).
uccl_conn* adopt_connection(uccl_engine* e, ConnId id, const PeerInfo& peer);
// Closes the tcpx connection, which retires its grant service (no callback
// runs once the close returns), and frees the object. The caller has already
// removed it from e->conns.
void close_and_free(uccl_conn* c);

// The process-wide list of live engines, for uccl_engine_get_notifs()
// (notify_api.cc).
void register_engine(uccl_engine* e);
void unregister_engine(uccl_engine* e);

}  // namespace tcpx::uccl_p2p

#endif  // TCPX_UCCL_P2P_STATE_H_
