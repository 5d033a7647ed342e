// Transport: a loaded ncclNet v7 plugin behind a C++ face. Return codes become
// Status values, comms and memory handles are RAII objects that close or
// deregister themselves, and nothing throws across the ABI.
//
// The plugin's own rules still apply (see docs/design.md section 2): at most 16
// outstanding requests per comm, only the oldest may be tested, irecv takes one
// buffer, irecvConsumed in post order. The engine layers above enforce them.
#ifndef TCPX_NET_TRANSPORT_H_
#define TCPX_NET_TRANSPORT_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "net/nccl_net_v7.h"
#include "net/tcpx_net_ext.h"
#include "tcpx/status.h"

namespace tcpx::net {

// File name of the built-in TCP plugin (built from src/net/tcp).
inline constexpr const char* kBuiltinPluginFile = "libtcpx_net_tcp.so";

// Maps an ncclResult_t to a Status; `what` names the call for the message.
Status from_nccl(ncclResult_t r, const char* what);

// Logs a failed close/dereg: there is nothing for the caller to do about it.
void warn_if_failed(const Status& s);

using NetHandle = std::array<uint8_t, NCCL_NET_HANDLE_MAXSIZE>;

class Transport;

// A plugin comm that closes itself. Movable, not copyable.
template <ncclResult_t (*Close)(const ncclNet_v7_t&, void*)>
class Comm {
 public:
  Comm() = default;
  Comm(std::shared_ptr<Transport> t, void* comm) : t_(std::move(t)), comm_(comm) {}
  Comm(Comm&& o) noexcept : t_(std::move(o.t_)), comm_(o.comm_) { o.comm_ = nullptr; }
  Comm& operator=(Comm&& o) noexcept {
    if (this != &o) { reset(); t_ = std::move(o.t_); comm_ = o.comm_; o.comm_ = nullptr; }
    return *this;
  }
  ~Comm() { reset(); }
  void* get() const { return comm_; }
  explicit operator bool() const { return comm_ != nullptr; }
  // Closes the comm now; the close status is logged, not returned, because a
  // close that fails leaves nothing for the caller to do.
  void reset();

 private:
  std::shared_ptr<Transport> t_;
  void* comm_ = nullptr;
};

ncclResult_t close_listen(const ncclNet_v7_t& v, void* c);
ncclResult_t close_send(const ncclNet_v7_t& v, void* c);
ncclResult_t close_recv(const ncclNet_v7_t& v, void* c);
using ListenComm = Comm<close_listen>;
using SendComm = Comm<close_send>;
using RecvComm = Comm<close_recv>;

// A plugin memory registration that deregisters itself. Must be destroyed
// before the comm it was registered on.
class MemHandle {
 public:
  MemHandle() = default;
  MemHandle(std::shared_ptr<Transport> t, void* comm, void* mh)
      : t_(std::move(t)), comm_(comm), mh_(mh) {}
  MemHandle(MemHandle&& o) noexcept;
  MemHandle& operator=(MemHandle&& o) noexcept;
  ~MemHandle() { reset(); }
  void* get() const { return mh_; }
  explicit operator bool() const { return mh_ != nullptr; }
  void reset();

 private:
  std::shared_ptr<Transport> t_;
  void* comm_ = nullptr;
  void* mh_ = nullptr;
};

// A loaded and initialised plugin. There is one per plugin library per
// process, shared by every Endpoint and C API engine: Google's TCPX plugin
// refuses a second init() in a process (its state even survives dlclose), and
// NCCL itself loads and inits a plugin once and never unloads it.
class Transport : public std::enable_shared_from_this<Transport> {
 public:
  // The process-wide plugin for `path` ("" = the built-in plugin, found next
  // to this library). The first call for a library dlopens it, resolves
  // exactly ncclNetPlugin_v7, checks the table and calls init(); later calls
  // (from any thread, for the same file under any name) return the same
  // Transport. The library is never unloaded. An init() that failed is not
  // retried: its error is returned again, since a plugin may refuse a second
  // init. Errors name the file and say what is missing (file, symbol, a table
  // that is not v7, a required slot that is NULL).
  static Status load(const std::string& path, std::shared_ptr<Transport>* out);
  // Where the built-in plugin would be loaded from (for tcpx-doctor).
  static std::string builtin_plugin_path();
  ~Transport();

  const ncclNet_v7_t& v() const { return *v_; }
  const std::string& path() const { return path_; }
  std::string name() const { return v_->name ? v_->name : "(unnamed)"; }

  Status devices(int* ndev) const;
  Status properties(int dev, ncclNetProperties_v7_t* props) const;

  // Whether connect can take a per-comm socket count (the built-in plugin's
  // extension, tcpx_net_ext.h).
  bool takes_socket_count() const { return ext_ != nullptr; }

  Status listen(int dev, NetHandle* handle, ListenComm* out);
  // One non-blocking step: OK with *out set once connected, IN_PROGRESS while
  // not yet (call again with the same handle object), or an error. `nsocks`
  // (> 0) is the socket count of the comm where the plugin takes one
  // (takes_socket_count()); other plugins configure themselves.
  Status connect_step(int dev, NetHandle* handle, int nsocks, SendComm* out);
  // Same for accept; *dev_handle is filled (UNPACK type when the plugin
  // delivers into a bounce buffer).
  Status accept_step(ListenComm& listen, RecvComm* out,
                     ncclNetDeviceHandle_v7_t* dev_handle);

  Status reg_mr(void* comm, void* data, size_t size, int type, MemHandle* out);

 private:
  Transport() = default;
  void* dl_ = nullptr;
  const ncclNet_v7_t* v_ = nullptr;
  const tcpxNetExt_v1_t* ext_ = nullptr;
  std::string path_;
};

template <ncclResult_t (*Close)(const ncclNet_v7_t&, void*)>
void Comm<Close>::reset() {
  if (comm_ != nullptr) {
    warn_if_failed(from_nccl(Close(t_->v(), comm_), "close comm"));
    comm_ = nullptr;
  }
  t_.reset();
}

}  // namespace tcpx::net

#endif  // TCPX_NET_TRANSPORT_H_
