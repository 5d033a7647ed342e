// NixlAgent: replays what NIXL's current UCCL backend (ai-dynamo/nixl
// src/plugins/uccl/uccl_backend.cpp, f36322e75 .. main) does with the newer
// UCCL engine API, call for call, so the tests here exercise the contract
// NIXL relies on:
//   create(num_cpus 4, in_python false) and a listener thread looping on
//   accept + start_listener until stop_accept; registerMem = reg +
//   prepare_fifo + get_ipc_info, then the deferred local connection to its
//   own address (same_process=true, no start_listener); loadRemoteConnInfo =
//   connect(same_process=false) + start_listener; prepXfer = conn_is_local +
//   deserialize_fifo_item + update_fifo per descriptor; postXfer =
//   read_vector / write_vector; checkXfer = xfer_status, then send_notif
//   with a MSG_SIZE blob; getNotifs = get_notifs(); teardown = stop_accept,
//   join, mr_destroy, conn_destroy, destroy.
#ifndef TCPX_TESTS_UCCL_P2P_NIXL_AGENT_H_
#define TCPX_TESTS_UCCL_P2P_NIXL_AGENT_H_

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "uccl_p2p/uccl_engine.h"

namespace uccl_p2p_test {

// One registered buffer as a peer sees it: its address range and the 64
// bytes NIXL ships in the agent metadata.
struct RemoteBuffer {
  uint64_t addr = 0;
  size_t len = 0;
  char fifo[FIFO_SIZE] = {};
};

class NixlAgent {
 public:
  explicit NixlAgent(std::string name) : name_(std::move(name)) {
    engine_ = uccl_engine_create(4, false);
    if (engine_ != nullptr) listener_ = std::thread([this] { listen(); });
  }
  ~NixlAgent() {
    stop_ = true;
    if (engine_ != nullptr) uccl_engine_stop_accept(engine_);
    if (listener_.joinable()) listener_.join();
    for (auto& [addr, mr] : mrs_) uccl_engine_mr_destroy(engine_, mr);
    for (auto& [agent, conn] : conns_) uccl_engine_conn_destroy(conn);
    for (auto& [ip, conn] : accepted_conns_) uccl_engine_conn_destroy(conn);
    if (engine_ != nullptr) uccl_engine_destroy(engine_);
  }
  NixlAgent(const NixlAgent&) = delete;
  NixlAgent& operator=(const NixlAgent&) = delete;

  bool ok() const { return engine_ != nullptr; }
  const std::string& name() const { return name_; }
  uccl_engine_t* engine() const { return engine_; }

  std::string conn_info() const {
    char* md = nullptr;
    if (uccl_engine_get_metadata(engine_, &md) != 0 || md == nullptr) return "";
    std::string s(md);
    delete[] md;
    return s;
  }

  // registerMem; the first one also makes the deferred local connection.
  bool register_buffer(void* data, size_t len, RemoteBuffer* out) {
    uccl_mr_t mr = 0;
    if (uccl_engine_reg(engine_, reinterpret_cast<uintptr_t>(data), len, mr) != 0) return false;
    out->addr = reinterpret_cast<uint64_t>(data);
    out->len = len;
    if (uccl_engine_prepare_fifo(engine_, mr, data, len, out->fifo) != 0) return false;
    char ipc[IPC_INFO_SIZE];
    bool has_ipc = true;
    uccl_engine_get_ipc_info(engine_, out->addr, ipc, &has_ipc);
    if (has_ipc) return false;  // no IPC path: must say so
    mrs_[out->addr] = mr;
    if (conns_.count(name_) == 0) {
      std::string md = conn_info();
      size_t colon = md.find(':'), q = md.find('?');
      uccl_conn_t* self = uccl_engine_connect(engine_, md.substr(0, colon).c_str(), md.substr(q + 1).c_str(),
                                              std::stoi(md.substr(colon + 1, q - colon - 1)), true);
      if (self == nullptr) return false;
      std::lock_guard<std::mutex> lk(mu_);
      conns_[name_] = self;
    }
    return true;
  }

  // loadRemoteConnInfo.
  bool connect_to(const std::string& agent, const std::string& info) {
    size_t colon = info.find(':'), q = info.find('?', colon);
    if (colon == std::string::npos || q == std::string::npos) return false;
    uccl_conn_t* c = uccl_engine_connect(engine_, info.substr(0, colon).c_str(), info.substr(q + 1).c_str(),
                                         std::stoi(info.substr(colon + 1, q - colon - 1)), false);
    if (c == nullptr) return false;
    uccl_engine_start_listener(c);
    std::lock_guard<std::mutex> lk(mu_);
    conns_[agent] = c;
    return true;
  }

  uccl_conn_t* conn(const std::string& agent) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = conns_.find(agent);
    return it == conns_.end() ? nullptr : it->second;
  }
  uccl_mr_t mr_of(const void* base) const { return mrs_.at(reinterpret_cast<uint64_t>(base)); }

  // prepXfer + postXfer for one descriptor pair per piece: local [local,
  // +len) inside the registration at local_base, remote [remote_addr, +len)
  // inside `remote`. Returns read_vector/write_vector's code.
  struct Piece {
    void* local_base;
    void* local;
    const RemoteBuffer* remote;
    uint64_t remote_addr;
    size_t len;
  };
  int post(bool is_read, const std::string& agent, const std::vector<Piece>& pieces, uint64_t* tid) {
    uccl_conn_t* c = conn(agent);
    if (c == nullptr) return -100;
    if (uccl_engine_conn_is_local(c)) return -101;  // would take NIXL's IPC branch
    std::vector<FifoItem> items(pieces.size());
    std::vector<uccl_mr_t> mrs;
    std::vector<void*> addrs;
    std::vector<size_t> sizes;
    for (size_t i = 0; i < pieces.size(); ++i) {
      deserialize_fifo_item(pieces[i].remote->fifo, &items[i]);
      uccl_engine_update_fifo(items[i], pieces[i].remote_addr, static_cast<uint32_t>(pieces[i].len));
      mrs.push_back(mr_of(pieces[i].local_base));
      addrs.push_back(pieces[i].local);
      sizes.push_back(pieces[i].len);
    }
    int n = static_cast<int>(pieces.size());
    return is_read ? uccl_engine_read_vector(c, mrs, addrs, sizes, items, n, tid, {})
                   : uccl_engine_write_vector(c, mrs, addrs, sizes, items, n, tid, {});
  }

  // checkXfer until done (or timeout), then the notification NIXL sends.
  bool wait_and_notify(const std::string& agent, uint64_t tid, const std::string& msg, int timeout_ms) {
    uccl_conn_t* c = conn(agent);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!uccl_engine_xfer_status(c, tid)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    notify_msg_t m = {};
    std::strncpy(m.name, name_.c_str(), sizeof(m.name) - 1);
    std::memcpy(m.msg, msg.data(), std::min(msg.size(), sizeof(m.msg)));
    return uccl_engine_send_notif(c, &m) == 0;
  }

  // Accepted connections seen by the listener thread (keyed by ip, as NIXL).
  size_t accepted() const { return accepted_.load(); }

 private:
  void listen() {
    while (!stop_) {
      char ip[256];
      int gpu = -1;
      uccl_conn_t* c = uccl_engine_accept(engine_, ip, sizeof(ip), &gpu);
      if (c == nullptr) {
        if (stop_) break;
        continue;
      }
      uccl_engine_start_listener(c);
      accepted_++;
      std::lock_guard<std::mutex> lk(mu_);
      // NIXL keys these by ip, so a second one from the same ip overwrites
      // the first, which only uccl_engine_destroy then closes.
      accepted_conns_[ip] = c;
    }
  }

  std::string name_;
  uccl_engine_t* engine_ = nullptr;
  std::thread listener_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> accepted_{0};
  std::mutex mu_;
  std::map<std::string, uccl_conn_t*> conns_;
  std::map<std::string, uccl_conn_t*> accepted_conns_;
  std::map<uint64_t, uccl_mr_t> mrs_;
};

// Drains get_notifs() until n arrived or timeout_ms passed.
inline std::vector<notify_msg_t> wait_notifs(size_t n, int timeout_ms) {
  std::vector<notify_msg_t> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto more = uccl_engine_get_notifs();
    got.insert(got.end(), more.begin(), more.end());
    if (more.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return got;
}

}  // namespace uccl_p2p_test

#endif  // TCPX_TESTS_UCCL_P2P_NIXL_AGENT_H_
