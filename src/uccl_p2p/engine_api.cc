// Engines, connections and memory of libuccl_p2p.so.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <new>
#include <string>
#include <thread>

#include "common/c_string.h"
#include "common/log.h"
#include "uccl_p2p/state.h"

using tcpx::Status;
using tcpx::StatusCode;
using tcpx::uccl_p2p::to_code;

namespace tcpx::uccl_p2p {
namespace {

// One wait of accept(): how soon a waiting accept sees stop_accept. The
// Endpoint offers no way to wake a waiting accept (a gap reported in
// docs/nixl.md), so accept waits in slices; a slice that ends idle costs one
// wake-up.
constexpr int kAcceptSliceMs = 20;

// The GPU index in a metadata string's "?gpu" part. UCCL also takes PCI bus
// ids there; the tcpx handshake checks an index, so those are refused.
bool parse_gpu(const char* s, int* out) {
  if (s == nullptr || *s == '\0') return false;
  const char* end = s + std::strlen(s);
  auto [p, ec] = std::from_chars(s, end, *out);
  return ec == std::errc() && p == end && *out >= 0;
}

}  // namespace

int to_code(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return UCCL_P2P_OK;
    case StatusCode::kInProgress: return UCCL_P2P_IN_PROGRESS;
    case StatusCode::kInvalidArgument: return UCCL_P2P_E_INVALID;
    case StatusCode::kTimedOut: return UCCL_P2P_E_TIMEOUT;
    case StatusCode::kPeerClosed: return UCCL_P2P_E_PEER_CLOSED;
    case StatusCode::kProtocolError: return UCCL_P2P_E_PROTOCOL;
    case StatusCode::kTransportError: return UCCL_P2P_E_TRANSPORT;
    case StatusCode::kNotFound: return UCCL_P2P_E_NOT_FOUND;
    case StatusCode::kUnsupported: return UCCL_P2P_E_UNSUPPORTED;
    case StatusCode::kRejected: return UCCL_P2P_E_REJECTED;
    case StatusCode::kClosed: return UCCL_P2P_E_CLOSED;
    case StatusCode::kCancelled: return UCCL_P2P_E_CANCELLED;
    default: return UCCL_P2P_E_INTERNAL;  // CUDA_ERROR, BUSY, INTERNAL: UCCL's API has no closer code
  }
}

void fail(Transfer& t, Status s) {
  t.phase = Transfer::Phase::kFailed;
  t.code = to_code(s);
  if (t.code >= 0) t.code = UCCL_P2P_E_INTERNAL;
  t.error = std::move(s);
}

}  // namespace tcpx::uccl_p2p

using namespace tcpx::uccl_p2p;

uccl_engine_t* uccl_engine_create(int num_cpus, bool in_python) {
  (void)num_cpus;
  (void)in_python;
  tcpx::Config config;
  Status s = tcpx::Config::from_env(&config);
  std::unique_ptr<tcpx::Endpoint> ep;
  if (s.ok()) s = tcpx::Endpoint::create(/*local_gpu_idx=*/0, config, &ep);
  if (!s.ok()) {
    TCPX_WARN("uccl_p2p: uccl_engine_create: %s", s.to_string().c_str());
    return nullptr;
  }
  auto* e = new (std::nothrow) uccl_engine;
  if (e == nullptr) return nullptr;
  e->ep = std::move(ep);
  register_engine(e);
  return e;
}

void uccl_engine_destroy(uccl_engine_t* engine) {
  if (engine == nullptr) return;
  uccl_engine_stop_accept(engine);
  unregister_engine(engine);  // before the endpoint goes: get_notifs reads it
  std::vector<uccl_conn*> conns;
  {
    std::lock_guard<std::mutex> lk(engine->mu);
    conns.swap(engine->conns);
  }
  for (auto* c : conns) close_and_free(c);
  engine->ep.reset();
  delete engine;
}

int uccl_engine_get_metadata(uccl_engine_t* engine, char** metadata_str) {
  if (engine == nullptr || metadata_str == nullptr) return UCCL_P2P_E_INVALID;
  std::string s = engine->ep->metadata_string();
  char* out = new (std::nothrow) char[s.size() + 1];
  if (out == nullptr) return UCCL_P2P_E_INTERNAL;
  std::memcpy(out, s.c_str(), s.size() + 1);
  *metadata_str = out;
  return UCCL_P2P_OK;
}

uccl_conn_t* uccl_engine_connect(uccl_engine_t* engine, char const* ip_addr, char const* remote_gpu,
                                 int remote_port, bool same_process) {
  (void)same_process;  // one path for all: loopback through the plugin
  int gpu = -1;
  if (engine == nullptr || ip_addr == nullptr || remote_port <= 0 || remote_port > 65535) {
    TCPX_WARN("uccl_p2p: uccl_engine_connect: invalid argument");
    return nullptr;
  }
  if (!parse_gpu(remote_gpu, &gpu)) {
    TCPX_WARN("uccl_p2p: uccl_engine_connect: remote GPU '%s' is not a GPU index (PCI bus ids are not supported)",
              remote_gpu ? remote_gpu : "(null)");
    return nullptr;
  }
  tcpx::ConnId id = 0;
  Status s = engine->ep->connect(ip_addr, gpu, static_cast<uint16_t>(remote_port), &id);
  if (!s.ok()) {
    TCPX_WARN("uccl_p2p: connect to %s:%d: %s", ip_addr, remote_port, s.to_string().c_str());
    return nullptr;
  }
  tcpx::PeerInfo peer{ip_addr, static_cast<uint16_t>(remote_port), gpu};
  return adopt_connection(engine, id, peer);
}

uccl_conn_t* uccl_engine_accept(uccl_engine_t* engine, char* ip_addr_buf, size_t ip_addr_buf_len,
                                int* remote_gpu_idx) {
  if (engine == nullptr) return nullptr;
  tcpx::ConnId id = 0;
  tcpx::PeerInfo peer;
  for (;;) {
    if (engine->accept_stopped.load()) return nullptr;
    Status s = engine->ep->accept(&id, &peer, kAcceptSliceMs);
    if (s.ok()) break;
    if (s.code() != StatusCode::kTimedOut) {
      TCPX_WARN("uccl_p2p: accept: %s", s.to_string().c_str());
      // NIXL calls accept again at once after a NULL: pause so a persistent
      // failure cannot turn its loop into a hot spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return nullptr;
    }
  }
  if (engine->accept_stopped.load()) {  // arrived after stop_accept: refuse
    (void)engine->ep->close_connection(id);  // just accepted: cannot fail
    return nullptr;
  }
  tcpx::copy_c_string(peer.ip, ip_addr_buf, ip_addr_buf_len);
  if (remote_gpu_idx != nullptr) *remote_gpu_idx = peer.gpu_idx;
  return adopt_connection(engine, id, peer);
}

void uccl_engine_stop_accept(uccl_engine_t* engine) {
  if (engine != nullptr) engine->accept_stopped = true;
}

// Nothing to start: connect and accept already installed the connection's
// grant service (NIXL does not call this for its same-process connection).
int uccl_engine_start_listener(uccl_conn_t* conn) { return conn == nullptr ? UCCL_P2P_E_INVALID : UCCL_P2P_OK; }

void uccl_engine_conn_destroy(uccl_conn_t* conn) {
  if (conn == nullptr) return;
  uccl_engine* e = conn->engine;
  {
    std::lock_guard<std::mutex> lk(e->mu);
    auto it = std::find(e->conns.begin(), e->conns.end(), conn);
    if (it == e->conns.end()) return;  // already destroyed: nothing to free twice
    e->conns.erase(it);
  }
  close_and_free(conn);
}

bool uccl_engine_conn_is_local(uccl_conn_t* conn) {
  (void)conn;
  return false;
}

int uccl_engine_reg(uccl_engine_t* engine, uintptr_t data, size_t size, uccl_mr_t& mr_id) {
  if (engine == nullptr || data == 0 || size == 0) return UCCL_P2P_E_INVALID;
  tcpx::MrId mr = 0;
  Status s = engine->ep->reg(reinterpret_cast<const void*>(data), size, &mr);
  if (!s.ok()) {
    TCPX_WARN("uccl_p2p: reg: %s", s.to_string().c_str());
    return to_code(s);
  }
  std::lock_guard<std::mutex> lk(engine->mu);
  mr_id = engine->next_mr++;
  engine->regions[mr_id] = Region{mr, data, size};
  return UCCL_P2P_OK;
}

void uccl_engine_mr_destroy(uccl_engine_t* engine, uccl_mr_t mr) {
  if (engine == nullptr) return;
  Region r;
  {
    std::lock_guard<std::mutex> lk(engine->mu);
    auto it = engine->regions.find(mr);
    if (it == engine->regions.end()) return;
    r = it->second;
    engine->regions.erase(it);
  }
  engine->grants.revoke(mr);  // from now on its FifoItems are stale
  Status s = engine->ep->dereg(r.mr);
  if (!s.ok()) TCPX_WARN("uccl_p2p: mr_destroy: %s", s.to_string().c_str());
}

int uccl_engine_prepare_fifo(uccl_engine_t* engine, uccl_mr_t mr, void const* data, size_t size, char* fifo_buf) {
  if (engine == nullptr || fifo_buf == nullptr || size == 0) return UCCL_P2P_E_INVALID;
  auto p = reinterpret_cast<uintptr_t>(data);
  std::lock_guard<std::mutex> lk(engine->mu);  // the region stays until the grant exists
  auto it = engine->regions.find(mr);
  if (it == engine->regions.end()) return UCCL_P2P_E_NOT_FOUND;
  const Region& r = it->second;
  if (p < r.base || p - r.base > r.size || size > r.size - (p - r.base)) return UCCL_P2P_E_INVALID;
  FifoItem item;
  Status s = engine->grants.add(mr, r.mr, p, size, &item);
  if (!s.ok()) return to_code(s);
  serialize_fifo_item(item, fifo_buf);
  return UCCL_P2P_OK;
}

int uccl_engine_update_fifo(FifoItem& fifo_item, uint64_t remote_addr, uint32_t size) {
  fifo_item.addr = remote_addr;
  fifo_item.size = size;
  return UCCL_P2P_OK;
}

int uccl_engine_get_ipc_info(uccl_engine_t* engine, uintptr_t addr, char* ipc_buf, bool* has_ipc) {
  (void)engine;
  (void)addr;
  if (ipc_buf != nullptr) std::memset(ipc_buf, 0, IPC_INFO_SIZE);
  if (has_ipc != nullptr) *has_ipc = false;
  return UCCL_P2P_E_UNSUPPORTED;
}

int uccl_engine_update_ipc_info(char* ipc_buf, uintptr_t addr, uintptr_t base_addr, size_t size) {
  (void)ipc_buf;
  (void)addr;
  (void)base_addr;
  (void)size;
  return UCCL_P2P_E_UNSUPPORTED;
}

void serialize_fifo_item(FifoItem const& item, char* buf) {
  std::memcpy(buf + 0, &item.addr, 8);
  std::memcpy(buf + 8, &item.size, 4);
  std::memcpy(buf + 12, &item.rkey, 4);
  std::memcpy(buf + 16, &item.nmsgs, 4);
  std::memcpy(buf + 20, &item.rid, 4);
  std::memcpy(buf + 24, &item.idx, 8);
  std::memcpy(buf + 32, item.padding, sizeof(item.padding));
}

void deserialize_fifo_item(char const* buf, FifoItem* item) {
  std::memcpy(&item->addr, buf + 0, 8);
  std::memcpy(&item->size, buf + 8, 4);
  std::memcpy(&item->rkey, buf + 12, 4);
  std::memcpy(&item->nmsgs, buf + 16, 4);
  std::memcpy(&item->rid, buf + 20, 4);
  std::memcpy(&item->idx, buf + 24, 8);
  std::memcpy(item->padding, buf + 32, sizeof(item->padding));
}
