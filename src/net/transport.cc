#include "net/transport.h"

#include <dlfcn.h>
#include <unistd.h>
#include <limits.h>

#include <climits>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/library_dir.h"
#include "common/log.h"

namespace tcpx::net {

Status from_nccl(ncclResult_t r, const char* what) {
  std::string w(what);
  switch (r) {
    case ncclSuccess: return Status::Ok();
    case ncclInProgress: return Status(StatusCode::kInProgress, w + ": in progress");
    case ncclUnhandledCudaError: return Status(StatusCode::kCudaError, w + ": plugin reported a CUDA error (1)");
    case ncclSystemError: return TransportError(w + ": plugin reported a system error (2)");
    case ncclInternalError: return TransportError(w + ": plugin reported an internal error (3)");
    case ncclInvalidArgument: return InvalidArgument(w + ": plugin rejected an argument (4)");
    case ncclInvalidUsage: return InvalidArgument(w + ": plugin reported invalid usage (5)");
    case ncclRemoteError: return PeerClosed(w + ": plugin reported a remote error (6)");
  }
  return TransportError(w + ": plugin returned unknown code " + std::to_string(static_cast<int>(r)));
}

void warn_if_failed(const Status& s) {
  if (!s.ok()) TCPX_WARN("%s", s.to_string().c_str());
}

ncclResult_t close_listen(const ncclNet_v7_t& v, void* c) { return v.closeListen(c); }
ncclResult_t close_send(const ncclNet_v7_t& v, void* c) { return v.closeSend(c); }
ncclResult_t close_recv(const ncclNet_v7_t& v, void* c) { return v.closeRecv(c); }

MemHandle::MemHandle(MemHandle&& o) noexcept
    : t_(std::move(o.t_)), comm_(o.comm_), mh_(o.mh_) {
  o.mh_ = nullptr;
  o.comm_ = nullptr;
}

MemHandle& MemHandle::operator=(MemHandle&& o) noexcept {
  if (this != &o) {
    reset();
    t_ = std::move(o.t_);
    comm_ = o.comm_;
    mh_ = o.mh_;
    o.mh_ = nullptr;
    o.comm_ = nullptr;
  }
  return *this;
}

void MemHandle::reset() {
  if (mh_ != nullptr) {
    warn_if_failed(from_nccl(t_->v().deregMr(comm_, mh_), "deregMr"));
    mh_ = nullptr;
    comm_ = nullptr;
  }
  t_.reset();
}

namespace {

bool readable(const std::string& p) { return access(p.c_str(), R_OK) == 0; }

}  // namespace

std::string Transport::builtin_plugin_path() {
  std::string dir = library_dir();
  std::vector<std::string> candidates;
  if (!dir.empty()) {
    candidates.push_back(dir + "/" + kBuiltinPluginFile);
    candidates.push_back(dir + "/../lib/" + kBuiltinPluginFile);
  }
#ifdef TCPX_INSTALL_LIBDIR
  candidates.push_back(std::string(TCPX_INSTALL_LIBDIR) + "/" + kBuiltinPluginFile);
#endif
  for (const auto& c : candidates)
    if (readable(c)) return c;
  return kBuiltinPluginFile;  // left to the dynamic loader's search path
}

namespace {

// Slots NCCL treats as optional: regMrDmaBuf (8), iflush (12), getDeviceMr
// (17), irecvConsumed (18). Every other one this engine calls.
bool optional_slot(size_t i) { return i == 8 || i == 12 || i == 17 || i == 18; }

// What happened to each plugin library this process loaded, keyed by its dl
// handle (dlopen returns the same handle for the same file under any path).
struct Loaded {
  std::shared_ptr<Transport> transport;  // set once init() succeeded
  Status init_error;                     // else why init() failed
};

// Never destroyed: plugins stay loaded and initialised until the process
// exits, and endpoints may still be torn down from atexit handlers.
std::mutex& registry_mu() {
  static auto* mu = new std::mutex();
  return *mu;
}
std::map<void*, Loaded>& registry() {
  static auto* m = new std::map<void*, Loaded>();
  return *m;
}

// Checks the table of a freshly opened library; dlcloses it on error.
Status resolve_table(void* dl, const std::string& path, const ncclNet_v7_t** out) {
  dlerror();
  auto* v = static_cast<const ncclNet_v7_t*>(dlsym(dl, NCCL_NET_PLUGIN_SYMBOL_V7));
  if (v == nullptr) {
    // Say which versions it does have, so "wrong version" reads as such.
    std::string others;
    for (const char* sym : {"ncclNetPlugin_v9", "ncclNetPlugin_v8", "ncclNetPlugin_v6", "ncclNetPlugin_v5"})
      if (dlsym(dl, sym) != nullptr) others += std::string(others.empty() ? "" : ", ") + sym;
    dlclose(dl);
    return NotFound("network plugin '" + path + "' does not export " NCCL_NET_PLUGIN_SYMBOL_V7 +
                    (others.empty() ? std::string(" (it is not an ncclNet plugin)")
                                    : " (it exports only " + others + "; this engine speaks v7 exactly)"));
  }
  const void* const* slots = reinterpret_cast<const void* const*>(v);
  for (size_t i = 0; i < sizeof(ncclNet_v7_t) / sizeof(void*); ++i) {
    if (slots[i] == nullptr && !optional_slot(i)) {
      dlclose(dl);
      return InvalidArgument("network plugin '" + path + "': " NCCL_NET_PLUGIN_SYMBOL_V7 " slot " +
                             std::to_string(i) + " is NULL (only regMrDmaBuf, iflush, getDeviceMr and "
                             "irecvConsumed may be)");
    }
  }
  *out = v;
  return Status::Ok();
}

}  // namespace

Status Transport::load(const std::string& requested, std::shared_ptr<Transport>* out) {
  if (out == nullptr) return InvalidArgument("Transport::load: out is null");
  std::string path = requested.empty() ? builtin_plugin_path() : requested;
  // One lock over open + init: concurrent first endpoints must not both init.
  std::lock_guard<std::mutex> lock(registry_mu());
  dlerror();
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char* e = dlerror();
    return NotFound("cannot load network plugin '" + path + "': " + (e ? e : "unknown dlopen error") +
                    (requested.empty() ? " (the built-in plugin; set TCPX_NET_PLUGIN to choose another)" : ""));
  }
  if (auto it = registry().find(dl); it != registry().end()) {
    dlclose(dl);  // the registry keeps its own reference
    if (!it->second.transport)
      return Status(it->second.init_error.code(),
                    it->second.init_error.message() + " (init failed earlier in this process; a plugin is "
                                                      "initialised once per process)");
    *out = it->second.transport;
    return Status::Ok();
  }
  const ncclNet_v7_t* v = nullptr;
  TCPX_RETURN_IF_ERROR(resolve_table(dl, path, &v));
  ncclResult_t r = v->init(reinterpret_cast<ncclDebugLogger_t>(&log::plugin_logger));
  if (r != ncclSuccess) {
    // Stays loaded: an init that failed half-way may have left state behind
    // that a second init trips over (TCPX's does).
    Status s = from_nccl(r, "plugin init");
    Status err(s.code(), "network plugin '" + path + "' (" + (v->name ? v->name : "?") + "): " + s.message());
    registry()[dl] = Loaded{nullptr, err};
    return err;
  }
  std::shared_ptr<Transport> t(new Transport());
  t->dl_ = dl;
  t->v_ = v;
  t->ext_ = static_cast<const tcpxNetExt_v1_t*>(dlsym(dl, TCPX_NET_EXT_SYMBOL_V1));
  t->path_ = path;
  registry()[dl] = Loaded{t, Status::Ok()};
  TCPX_INFO("loaded network plugin %s from %s%s", t->name().c_str(), path.c_str(),
            t->ext_ != nullptr ? " (with the built-in extensions)" : "");
  *out = std::move(t);
  return Status::Ok();
}

Transport::~Transport() {
  // Never runs for a loaded plugin (the registry holds it for the process's
  // life). Plugins keep threads and static state; unloading one that was
  // initialised is not safe in general (NCCL never does it either).
  (void)dl_;
}

Status Transport::devices(int* ndev) const {
  if (ndev == nullptr) return InvalidArgument("devices: ndev is null");
  return from_nccl(v_->devices(ndev), "devices");
}

Status Transport::properties(int dev, ncclNetProperties_v7_t* props) const {
  if (props == nullptr) return InvalidArgument("getProperties: props is null");
  return from_nccl(v_->getProperties(dev, props), "getProperties");
}

Status Transport::listen(int dev, NetHandle* handle, ListenComm* out) {
  if (handle == nullptr || out == nullptr) return InvalidArgument("listen: null argument");
  handle->fill(0);
  void* comm = nullptr;
  TCPX_RETURN_IF_ERROR(from_nccl(v_->listen(dev, handle->data(), &comm), "listen"));
  if (comm == nullptr) return TransportError("listen: plugin returned no comm");
  *out = ListenComm(shared_from_this(), comm);
  return Status::Ok();
}

Status Transport::connect_step(int dev, NetHandle* handle, int nsocks, SendComm* out) {
  if (handle == nullptr || out == nullptr) return InvalidArgument("connect: null argument");
  void* comm = nullptr;
  ncclNetDeviceHandle_v7_t* dev_handle = nullptr;
  ncclResult_t r = (ext_ != nullptr && nsocks > 0)
                       ? ext_->connectWithSockets(dev, handle->data(), nsocks, &comm, &dev_handle)
                       : v_->connect(dev, handle->data(), &comm, &dev_handle);
  TCPX_RETURN_IF_ERROR(from_nccl(r, "connect"));
  if (comm == nullptr) return Status(StatusCode::kInProgress, "connect in progress");
  *out = SendComm(shared_from_this(), comm);
  return Status::Ok();
}

Status Transport::accept_step(ListenComm& listen, RecvComm* out,
                              ncclNetDeviceHandle_v7_t* dev_handle) {
  if (!listen || out == nullptr || dev_handle == nullptr) return InvalidArgument("accept: null argument");
  void* comm = nullptr;
  ncclNetDeviceHandle_v7_t* dh = dev_handle;
  TCPX_RETURN_IF_ERROR(from_nccl(v_->accept(listen.get(), &comm, &dh), "accept"));
  if (comm == nullptr) return Status(StatusCode::kInProgress, "accept in progress");
  *out = RecvComm(shared_from_this(), comm);
  return Status::Ok();
}

Status Transport::reg_mr(void* comm, void* data, size_t size, int type, MemHandle* out) {
  if (comm == nullptr || out == nullptr) return InvalidArgument("regMr: null argument");
  if (size > static_cast<size_t>(INT_MAX))
    return InvalidArgument("regMr: " + std::to_string(size) + " bytes exceeds the v7 ABI's int size");
  void* mh = nullptr;
  TCPX_RETURN_IF_ERROR(from_nccl(v_->regMr(comm, data, static_cast<int>(size), type, &mh), "regMr"));
  *out = MemHandle(shared_from_this(), comm, mh);
  return Status::Ok();
}

}  // namespace tcpx::net
