// Notifications of libuccl_p2p.so. They travel as tcpx notifications, which
// the peer sees only after the data of the transfers completed before them.
// UCCL keeps one list per process and its getters take no engine, so the
// getters here drain every live engine of the process.
#include <algorithm>
#include <cstring>
#include <string>

#include "common/log.h"
#include "uccl_p2p/state.h"

using tcpx::Status;
using namespace tcpx::uccl_p2p;

namespace tcpx::uccl_p2p {
namespace {

// Heap objects never destroyed: usable from threads still running at exit.
std::mutex& registry_mu() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::vector<uccl_engine*>& live_engines() {
  static auto* v = new std::vector<uccl_engine*>;
  return *v;
}

std::vector<Notification> drain_all() {
  std::vector<Notification> out;
  std::lock_guard<std::mutex> lk(registry_mu());
  for (auto* e : live_engines()) {
    auto n = e->ep->get_notifications();
    std::move(n.begin(), n.end(), std::back_inserter(out));
  }
  return out;
}

void copy_field(char (&dst)[MSG_SIZE], const std::string& src, bool c_string) {
  size_t room = c_string ? sizeof(dst) - 1 : sizeof(dst);
  size_t n = std::min(src.size(), room);
  std::memcpy(dst, src.data(), n);
  std::memset(dst + n, 0, sizeof(dst) - n);
}

int send(uccl_conn_t* conn, const std::string& name, const std::string& msg) {
  if (conn == nullptr) return UCCL_P2P_E_INVALID;
  Status s = conn->engine->ep->send_notification(conn->id, name, msg);
  if (!s.ok()) TCPX_WARN("uccl_p2p: send_notif: %s", s.to_string().c_str());
  return to_code(s);
}

}  // namespace

void register_engine(uccl_engine* e) {
  std::lock_guard<std::mutex> lk(registry_mu());
  live_engines().push_back(e);
}

void unregister_engine(uccl_engine* e) {
  std::lock_guard<std::mutex> lk(registry_mu());
  std::erase(live_engines(), e);
}

}  // namespace tcpx::uccl_p2p

// name is a C string; msg is a MSG_SIZE-byte blob (NIXL puts serialised,
// binary data there), so all of it travels.
int uccl_engine_send_notif(uccl_conn_t* conn, notify_msg_t* notify_msg) {
  if (notify_msg == nullptr) return UCCL_P2P_E_INVALID;
  std::string name(notify_msg->name, strnlen(notify_msg->name, MSG_SIZE));
  return send(conn, name, std::string(notify_msg->msg, MSG_SIZE));
}

int uccl_engine_send_notif_v(uccl_conn_t* conn, notify_msg_v_t const* notify_msg) {
  if (notify_msg == nullptr) return UCCL_P2P_E_INVALID;
  return send(conn, notify_msg->name, notify_msg->msg);
}

std::vector<notify_msg_t> uccl_engine_get_notifs() {
  std::vector<notify_msg_t> out;
  for (auto& n : drain_all()) {
    notify_msg_t m;
    copy_field(m.name, n.name, /*c_string=*/true);
    copy_field(m.msg, n.msg, /*c_string=*/false);
    out.push_back(m);
  }
  return out;
}

std::vector<notify_msg_v_t> uccl_engine_get_notifs_v() {
  std::vector<notify_msg_v_t> out;
  for (auto& n : drain_all()) out.push_back({std::move(n.name), std::move(n.msg)});
  return out;
}
