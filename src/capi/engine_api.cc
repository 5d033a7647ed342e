// C entry points for engines, connections, memory and notifications.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <thread>

#include "capi/state.h"
#include "common/c_string.h"
#include "common/log.h"

using tcpx::Status;
using tcpx::StatusCode;
using tcpx::capi::to_code;

namespace tcpx::capi {
namespace {

// Both lists are heap objects that are never destroyed: the destroyed shells
// must stay reachable (and valid) until the very end of the process, after
// static destructors too.
std::mutex& registry_mu() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::vector<uccl_engine*>& live_engines() {
  static auto* v = new std::vector<uccl_engine*>;
  return *v;
}
std::vector<uccl_engine*>& destroyed_engines() {
  static auto* v = new std::vector<uccl_engine*>;
  return *v;
}

void copy_field(char (&dst)[MSG_SIZE], const std::string& src) {
  size_t n = std::min(src.size(), sizeof(dst) - 1);
  std::memcpy(dst, src.data(), n);
  std::memset(dst + n, 0, sizeof(dst) - n);
}

// Moves up to `max` of the engine's notifications to `out`.
size_t drain_engine(uccl_engine* e, notify_msg_t* out, size_t max) {
  std::lock_guard<std::mutex> lk(e->notif_mu);
  if (e->notifs.size() < max) {
    if (auto ep = e->endpoint()) {
      for (auto& n : ep->get_notifications()) {
        notify_msg_t m;
        copy_field(m.name, n.name);
        copy_field(m.msg, n.msg);
        e->notifs.push_back(m);
      }
    }
  }
  size_t n = std::min(max, e->notifs.size());
  std::copy_n(e->notifs.begin(), n, out);
  e->notifs.erase(e->notifs.begin(), e->notifs.begin() + static_cast<long>(n));
  return n;
}

}  // namespace

[[noreturn]] void park_forever(std::unique_lock<std::mutex>& lk, uccl_engine* e) {
  TCPX_INFO("capi: accept on a destroyed engine parks for good (compatibility rule)");
  for (;;) e->park.wait(lk);
}

void register_live_engine(uccl_engine* e) {
  std::lock_guard<std::mutex> lk(registry_mu());
  live_engines().push_back(e);
}

void unregister_live_engine(uccl_engine* e) {
  std::lock_guard<std::mutex> lk(registry_mu());
  auto& v = live_engines();
  v.erase(std::remove(v.begin(), v.end(), e), v.end());
}

void keep_destroyed_engine(uccl_engine* e) {
  std::lock_guard<std::mutex> lk(registry_mu());
  destroyed_engines().push_back(e);
}

int drain_all(notify_msg_t* out, size_t max, size_t* count) {
  std::lock_guard<std::mutex> lk(registry_mu());
  size_t n = 0;
  for (uccl_engine* e : live_engines()) {
    if (n == max) break;
    n += drain_engine(e, out + n, max - n);
  }
  *count = n;
  return UCCL_OK;
}

int drain_one(uccl_engine* e, notify_msg_t* out, size_t max, size_t* count) {
  *count = drain_engine(e, out, max);
  return UCCL_OK;
}

}  // namespace tcpx::capi

extern "C" {

uccl_engine_t* uccl_engine_create(int local_gpu_idx, int num_cpus, bool in_python) {
  (void)num_cpus;
  (void)in_python;
  tcpx::Config config;
  Status s = tcpx::Config::from_env(&config);
  std::unique_ptr<tcpx::Endpoint> ep;
  if (s.ok()) s = tcpx::Endpoint::create(local_gpu_idx, config, &ep);
  if (!s.ok()) {
    TCPX_WARN("uccl_engine_create(gpu %d): %s", local_gpu_idx, s.to_string().c_str());
    return nullptr;
  }
  auto* e = new (std::nothrow) uccl_engine;
  if (e == nullptr) return nullptr;
  e->ep = std::move(ep);
  e->write_slot_timeout_ms = std::max(config.peer_timeout_ms, 1000);
  tcpx::capi::register_live_engine(e);
  return e;
}

void uccl_engine_destroy(uccl_engine_t* e) {
  if (e == nullptr) return;
  {
    std::lock_guard<std::mutex> lk(e->mu);
    if (e->destroying) return;
    e->destroying = true;
  }
  tcpx::capi::unregister_live_engine(e);
  {
    std::lock_guard<std::mutex> lk(e->lifecycle_mu);
    for (uccl_conn* c : e->conns) tcpx::capi::shutdown_conn(c);
  }
  std::shared_ptr<tcpx::Endpoint> ep;
  {
    // Accepts notice `destroying` within one accept slice and park.
    std::unique_lock<std::mutex> lk(e->mu);
    e->accept_left.wait(lk, [e] { return e->in_accept == 0; });
    ep = std::move(e->ep);
  }
  ep.reset();
  tcpx::capi::keep_destroyed_engine(e);
}

int uccl_engine_get_metadata(uccl_engine_t* e, char** metadata_str) {
  if (e == nullptr || metadata_str == nullptr) return UCCL_E_INVALID;
  auto ep = e->endpoint();
  if (!ep) return UCCL_E_CLOSED;
  std::string s = ep->metadata_string();
  char* out = new (std::nothrow) char[s.size() + 1];
  if (out == nullptr) return UCCL_E_INTERNAL;
  std::memcpy(out, s.c_str(), s.size() + 1);
  *metadata_str = out;
  return UCCL_OK;
}

void uccl_engine_free_metadata(char* metadata_str) { delete[] metadata_str; }

}  // extern "C"

namespace {

uccl_conn* make_conn(uccl_engine* e, std::shared_ptr<tcpx::Endpoint> ep, tcpx::ConnId id,
                     const tcpx::PeerInfo& peer) {
  auto* c = new uccl_conn;
  c->engine = e;
  c->id = id;
  c->peer = peer;
  std::lock_guard<std::mutex> lk(e->lifecycle_mu);
  bool destroying;
  {
    std::lock_guard<std::mutex> elk(e->mu);
    destroying = e->destroying;
  }
  if (destroying) {
    // The engine was destroyed while this connection was being made: hand
    // out a handle that is already shut down rather than keep the endpoint.
    (void)ep->close_connection(id);  // an id just handed out: closing it cannot fail
    c->closing = true;
    c->broken = tcpx::Closed("engine destroyed");
  } else {
    c->ep = std::move(ep);
  }
  e->conns.insert(c);
  return c;
}

}  // namespace

extern "C" {

uccl_conn_t* uccl_engine_connect(uccl_engine_t* e, const char* ip_addr, int remote_gpu_idx,
                                 int remote_port) {
  if (e == nullptr || ip_addr == nullptr || remote_port <= 0 || remote_port > 65535)
    return nullptr;
  auto ep = e->endpoint();
  if (!ep) return nullptr;
  tcpx::ConnId id = 0;
  Status s = ep->connect(ip_addr, remote_gpu_idx, static_cast<uint16_t>(remote_port), &id);
  if (!s.ok()) {
    TCPX_WARN("uccl_engine_connect(%s:%d gpu %d): %s", ip_addr, remote_port, remote_gpu_idx,
              s.to_string().c_str());
    return nullptr;
  }
  tcpx::PeerInfo peer;
  peer.ip = ip_addr;
  peer.port = static_cast<uint16_t>(remote_port);
  peer.gpu_idx = remote_gpu_idx;
  return make_conn(e, std::move(ep), id, peer);
}

uccl_conn_t* uccl_engine_accept(uccl_engine_t* e, char* ip_addr_buf, size_t ip_addr_buf_len,
                                int* remote_gpu_idx) {
  if (e == nullptr) return nullptr;
  constexpr int kAcceptSliceMs = 100;  // how soon a destroy is noticed
  std::shared_ptr<tcpx::Endpoint> ep;
  {
    std::unique_lock<std::mutex> lk(e->mu);
    if (e->destroying) tcpx::capi::park_forever(lk, e);
    ++e->in_accept;
    ep = e->ep;
  }
  for (;;) {
    tcpx::ConnId id = 0;
    tcpx::PeerInfo peer;
    Status s = ep->accept(&id, &peer, kAcceptSliceMs);
    bool destroying;
    {
      std::lock_guard<std::mutex> lk(e->mu);
      destroying = e->destroying;
    }
    if (destroying) {
      if (s.ok()) (void)ep->close_connection(id);  // just accepted: cannot fail
      ep.reset();
      std::unique_lock<std::mutex> lk(e->mu);
      --e->in_accept;
      e->accept_left.notify_all();
      tcpx::capi::park_forever(lk, e);
    }
    if (s.code() == StatusCode::kTimedOut) continue;
    {
      std::lock_guard<std::mutex> lk(e->mu);
      --e->in_accept;
      e->accept_left.notify_all();
    }
    if (!s.ok()) {
      TCPX_WARN("uccl_engine_accept: %s", s.to_string().c_str());
      // NIXL calls accept again at once after a NULL: pause so a persistent
      // failure cannot turn its loop into a hot spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return nullptr;
    }
    tcpx::copy_c_string(peer.ip, ip_addr_buf, ip_addr_buf_len);
    if (remote_gpu_idx != nullptr) *remote_gpu_idx = peer.gpu_idx;
    return make_conn(e, std::move(ep), id, peer);
  }
}

uccl_mr_t* uccl_engine_reg(uccl_engine_t* e, uintptr_t data, size_t size) {
  if (e == nullptr || data == 0 || size == 0) return nullptr;
  auto ep = e->endpoint();
  if (!ep) return nullptr;
  tcpx::MrId id = 0;
  Status s = ep->reg(reinterpret_cast<const void*>(data), size, &id);
  if (!s.ok()) {
    TCPX_WARN("uccl_engine_reg(%p, %zu): %s", reinterpret_cast<void*>(data), size,
              s.to_string().c_str());
    return nullptr;
  }
  auto* mr = new uccl_mr;
  mr->engine = e;
  mr->id = id;
  mr->base = data;
  mr->size = size;
  return mr;
}

void uccl_engine_mr_destroy(uccl_mr_t* mr) {
  if (mr == nullptr) return;
  if (auto ep = mr->engine->endpoint()) {
    // A region still in use by a transfer: wait for the transfer's end
    // (which itself comes within the peer timeout), up to 10 s.
    Status s = ep->dereg(mr->id, 10000);
    if (!s.ok())
      TCPX_WARN("uccl_engine_mr_destroy: %s (the region stays registered until the engine "
                "is destroyed)", s.to_string().c_str());
  }
  delete mr;
}

int uccl_engine_get_notifs(notify_msg_t* out, size_t max, size_t* count) {
  if (count == nullptr || (out == nullptr && max > 0)) return UCCL_E_INVALID;
  return tcpx::capi::drain_all(out, max, count);
}

int uccl_engine_drain_notifs(uccl_engine_t* e, notify_msg_t* out, size_t max, size_t* count) {
  if (e == nullptr || count == nullptr || (out == nullptr && max > 0)) return UCCL_E_INVALID;
  return tcpx::capi::drain_one(e, out, max, count);
}

int uccl_engine_send_notif(uccl_conn_t* c, notify_msg_t* m) {
  if (c == nullptr || m == nullptr) return UCCL_E_INVALID;
  auto ep = c->endpoint();
  if (!ep) return UCCL_E_CLOSED;
  std::string name(m->name, strnlen(m->name, sizeof(m->name)));
  std::string msg(m->msg, strnlen(m->msg, sizeof(m->msg)));
  return to_code(ep->send_notification(c->id, name, msg));
}

}  // extern "C"
