#include "net/transport.h"

#include <dlfcn.h>
#include <unistd.h>
#include <limits.h>

#include <climits>
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

Status Transport::load(const std::string& requested, std::shared_ptr<Transport>* out) {
  if (out == nullptr) return InvalidArgument("Transport::load: out is null");
  std::string path = requested.empty() ? builtin_plugin_path() : requested;
  dlerror();
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char* e = dlerror();
    return NotFound("cannot load network plugin '" + path + "': " + (e ? e : "unknown dlopen error") +
                    (requested.empty() ? " (the built-in plugin; set TCPX_NET_PLUGIN to choose another)" : ""));
  }
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
    // name, and every function this engine calls, must be present. regMrDmaBuf,
    // iflush and getDeviceMr are optional in practice.
    bool optional = (i == 8 || i == 12 || i == 17);
    if (slots[i] == nullptr && !optional) {
      dlclose(dl);
      return InvalidArgument("network plugin '" + path + "': " NCCL_NET_PLUGIN_SYMBOL_V7 " slot " +
                             std::to_string(i) + " is NULL");
    }
  }
  ncclResult_t r = v->init(reinterpret_cast<ncclDebugLogger_t>(&log::plugin_logger));
  if (r != ncclSuccess) {
    Status s = from_nccl(r, "plugin init");
    dlclose(dl);
    return Status(s.code(), "network plugin '" + path + "' (" + (v->name ? v->name : "?") +
                                "): " + s.message());
  }
  std::shared_ptr<Transport> t(new Transport());
  t->dl_ = dl;
  t->v_ = v;
  t->path_ = path;
  TCPX_INFO("loaded network plugin %s from %s", t->name().c_str(), path.c_str());
  *out = std::move(t);
  return Status::Ok();
}

Transport::~Transport() {
  // Plugins keep threads and static state; unloading one that was initialised
  // is not safe in general (NCCL never does it either).
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

Status Transport::connect_step(int dev, NetHandle* handle, SendComm* out) {
  if (handle == nullptr || out == nullptr) return InvalidArgument("connect: null argument");
  void* comm = nullptr;
  ncclNetDeviceHandle_v7_t* dev_handle = nullptr;
  TCPX_RETURN_IF_ERROR(from_nccl(v_->connect(dev, handle->data(), &comm, &dev_handle), "connect"));
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
