// The built-in TCP plugin's ncclNet v7 table: argument checks and dispatch.
// The behaviour each entry promises is docs/design.md section 2 (TCPX's) plus
// section 9's choices; the real work lives in the comm classes.
#include <climits>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "net/nccl_net_v7.h"
#include "net/tcpx_net_ext.h"
#include "net/tcp/connection_setup.h"
#include "net/tcp/devices.h"
#include "net/tcp/mem_region.h"
#include "net/tcp/options.h"
#include "net/tcp/plugin_log.h"
#include "net/tcp/recv_comm.h"
#include "net/tcp/send_comm.h"

namespace tcpx::tcp {
namespace {

// init() may run more than once unless strict TCPX emulation is on; later
// calls re-read the environment. Comms keep what they were created with.
std::mutex g_mu;
std::vector<NetDevice>* g_devices = new std::vector<NetDevice>();
bool g_initialized = false;

bool device(int dev, NetDevice* out) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_initialized || dev < 0 || static_cast<size_t>(dev) >= g_devices->size()) return false;
  *out = (*g_devices)[static_cast<size_t>(dev)];
  return true;
}

ncclResult_t tcp_init(ncclDebugLogger_t logger) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_initialized && strict_emulation()) {
    // Google's plugin: "gpu lib init twice", error 3, and it stays so even
    // after dlclose. The logger of the first init is kept.
    TCP_WARN("init: called a second time in this process; refused as Google's TCPX plugin refuses it "
             "(strict TCPX emulation, TCPX_P2P_TCP_STRICT=1): load and init a plugin once per process");
    return ncclInternalError;
  }
  set_logger(logger);
  Options opts;
  std::string why;
  std::vector<NetDevice> devs;
  if (!read_options(&opts, &why) || !discover_devices(opts, &devs, &why)) {
    TCP_WARN("init: %s", why.c_str());
    return ncclInvalidArgument;
  }
  *g_devices = std::move(devs);
  g_initialized = true;
  set_strict_emulation(opts.strict);
  set_read_lowat(opts.read_lowat);
  TCP_INFO("init: %zu devices, first %s (%s)%s", g_devices->size(), (*g_devices)[0].name,
           address_string((*g_devices)[0].addr).c_str(), opts.strict ? ", strict TCPX emulation" : "");
  return ncclSuccess;
}

ncclResult_t tcp_devices(int* ndev) {
  if (ndev == nullptr) return ncclInvalidArgument;
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_initialized) return ncclInvalidUsage;
  *ndev = static_cast<int>(g_devices->size());
  return ncclSuccess;
}

ncclResult_t tcp_get_properties(int dev, ncclNetProperties_v7_t* props) {
  if (props == nullptr) return ncclInvalidArgument;
  NetDevice d;
  if (!device(dev, &d)) return ncclInvalidArgument;
  memset(props, 0, sizeof(*props));
  props->name = const_cast<char*>(d.name);
  props->pciPath = const_cast<char*>(d.pci_path);
  props->guid = static_cast<uint64_t>(dev);
  props->ptrSupport = NCCL_PTR_HOST | NCCL_PTR_CUDA;
  props->speed = d.speed_mbps;
  props->port = 0;
  props->latency = 0;
  props->maxComms = 65536;
  props->maxRecvs = 1;
  props->netDeviceType = NCCL_NET_DEVICE_UNPACK;
  props->netDeviceVersion = NCCL_NET_DEVICE_UNPACK_VERSION;
  return ncclSuccess;
}

ncclResult_t tcp_listen(int dev, void* handle, void** listen_comm) {
  if (handle == nullptr || listen_comm == nullptr) return ncclInvalidArgument;
  NetDevice d;
  if (!device(dev, &d)) return ncclInvalidArgument;
  bool bounce_host = false;
  std::string why;
  if (!read_bounce_host(&bounce_host, &why)) {
    TCP_WARN("listen: %s", why.c_str());
    return ncclInvalidArgument;
  }
  ListenComm* lc = nullptr;
  ncclResult_t r = listen_on(d.addr, d.addr_len, bounce_host, handle, &lc);
  if (r == ncclSuccess) *listen_comm = lc;
  return r;
}

// nsocks 0: TCPX_P2P_TCP_NSOCKS decides (plain v7 connect).
ncclResult_t connect_with(int dev, void* handle, int nsocks, void** send_comm) {
  if (handle == nullptr || send_comm == nullptr) return ncclInvalidArgument;
  if (nsocks < 0 || nsocks > kMaxSocketsPerComm) return ncclInvalidArgument;
  NetDevice d;
  if (!device(dev, &d)) return ncclInvalidArgument;
  *send_comm = nullptr;
  SendComm* sc = nullptr;
  ncclResult_t r = connect_step(handle, nsocks, &sc);
  if (r == ncclSuccess && sc != nullptr) *send_comm = sc;
  return r;  // the send device handle is left untouched: sends need none
}

ncclResult_t tcp_connect(int dev, void* handle, void** send_comm, ncclNetDeviceHandle_v7_t** send_dev_comm) {
  return connect_with(dev, handle, 0, send_comm);
}

ncclResult_t tcp_connect_with_sockets(int dev, void* handle, int nsocks, void** send_comm,
                                      ncclNetDeviceHandle_v7_t** send_dev_comm) {
  if (nsocks < 1) return ncclInvalidArgument;
  return connect_with(dev, handle, nsocks, send_comm);
}

ncclResult_t tcp_accept(void* listen_comm, void** recv_comm, ncclNetDeviceHandle_v7_t** recv_dev_comm) {
  ListenComm* lc = ListenComm::from(listen_comm);
  // TCPX writes the device handle through recv_dev_comm, so it is required;
  // the storage it points to is filled only when the caller provides it.
  if (lc == nullptr || recv_comm == nullptr || recv_dev_comm == nullptr) return ncclInvalidArgument;
  *recv_comm = nullptr;
  RecvComm* rc = nullptr;
  ncclResult_t r = lc->accept_step(&rc);
  if (r != ncclSuccess || rc == nullptr) return r;
  if (recv_dev_comm != nullptr && *recv_dev_comm != nullptr) {
    ncclNetDeviceHandle_v7_t* dh = *recv_dev_comm;
    dh->netDeviceType = NCCL_NET_DEVICE_UNPACK;
    dh->netDeviceVersion = NCCL_NET_DEVICE_UNPACK_VERSION;
    dh->handle = rc->device_handle();
    dh->size = sizeof(unpackNetDeviceHandle);
    dh->needsProxyProgress = 1;
  }
  *recv_comm = rc;
  return ncclSuccess;
}

ncclResult_t tcp_reg_mr(void* comm, void* data, int size, int type, void** mhandle) {
  if ((SendComm::from(comm) == nullptr && RecvComm::from(comm) == nullptr) || mhandle == nullptr ||
      data == nullptr || size <= 0)
    return ncclInvalidArgument;
  if (type != NCCL_PTR_HOST && type != NCCL_PTR_CUDA) return ncclInvalidArgument;
  if (type == NCCL_PTR_CUDA && reinterpret_cast<uintptr_t>(data) % 4096 != 0) {
    TCP_WARN("regMr: CUDA memory at %p is not 4096-byte aligned", data);
    return ncclInvalidArgument;
  }
  auto* mr = new (std::nothrow) MemRegion();
  if (mr == nullptr) return ncclSystemError;
  mr->type = type;
  mr->base = reinterpret_cast<uintptr_t>(data);
  mr->size = static_cast<uint64_t>(size);
  *mhandle = mr;
  return ncclSuccess;
}

ncclResult_t tcp_reg_mr_dmabuf(void* comm, void* data, size_t size, int type, uint64_t offset, int fd,
                               void** mhandle) {
  return ncclInvalidUsage;  // no dma-buf over TCP; ptrSupport does not claim it
}

ncclResult_t tcp_dereg_mr(void* comm, void* mhandle) {
  MemRegion* mr = as_region(mhandle);
  if (mr == nullptr || (SendComm::from(comm) == nullptr && RecvComm::from(comm) == nullptr))
    return ncclInvalidArgument;
  mr->magic = 0;
  delete mr;
  return ncclSuccess;
}

ncclResult_t tcp_isend(void* send_comm, void* data, int size, int tag, void* mhandle, void** request) {
  SendComm* sc = SendComm::from(send_comm);
  const MemRegion* mr = as_region(mhandle);
  if (sc == nullptr || request == nullptr || mr == nullptr || size < 0 || (data == nullptr && size > 0))
    return ncclInvalidArgument;
  *request = nullptr;
  if (size > 0 && !mr->contains(data, static_cast<uint64_t>(size))) {
    TCP_WARN("isend: %d bytes at %p are outside their registration", size, data);
    return ncclInvalidArgument;
  }
  return sc->post(data, size, *mr, request);
}

ncclResult_t tcp_irecv(void* recv_comm, int n, void** data, int* sizes, int* tags, void** mhandles,
                       void** request) {
  RecvComm* rc = RecvComm::from(recv_comm);
  if (rc == nullptr || request == nullptr || n != 1 || data == nullptr || sizes == nullptr ||
      mhandles == nullptr)
    return ncclInvalidArgument;
  *request = nullptr;
  const MemRegion* mr = as_region(mhandles[0]);
  if (mr == nullptr || sizes[0] < 0 || (data[0] == nullptr && sizes[0] > 0)) return ncclInvalidArgument;
  if (sizes[0] > 0 && !mr->contains(data[0], static_cast<uint64_t>(sizes[0]))) {
    TCP_WARN("irecv: %d bytes at %p are outside their registration", sizes[0], data[0]);
    return ncclInvalidArgument;
  }
  return rc->post(data[0], sizes[0], *mr, request);
}

ncclResult_t tcp_iflush(void* recv_comm, int n, void** data, int* sizes, void** mhandles, void** request) {
  if (RecvComm::from(recv_comm) == nullptr || request == nullptr) return ncclInvalidArgument;
  *request = nullptr;  // receives land in host memory: nothing to flush
  return ncclSuccess;
}

ncclResult_t tcp_test(void* request, int* done, int* sizes) {
  auto* h = static_cast<RequestHeader*>(request);
  if (h == nullptr || done == nullptr || h->magic != kRequestMagic) return ncclInvalidArgument;
  // *sizes is never written, like TCPX: callers know sizes out of band.
  if (h->kind == RequestKind::kSend) {
    auto* r = static_cast<SendRequest*>(h);
    return r->comm->test(r, done);
  }
  auto* r = static_cast<RecvRequest*>(h);
  return r->comm->test(r, done);
}

ncclResult_t tcp_close_send(void* send_comm) {
  SendComm* sc = SendComm::from(send_comm);
  if (sc == nullptr) return ncclInvalidArgument;
  delete sc;
  return ncclSuccess;
}

ncclResult_t tcp_close_recv(void* recv_comm) {
  RecvComm* rc = RecvComm::from(recv_comm);
  if (rc == nullptr) return ncclInvalidArgument;
  delete rc;
  return ncclSuccess;
}

ncclResult_t tcp_close_listen(void* listen_comm) {
  ListenComm* lc = ListenComm::from(listen_comm);
  if (lc == nullptr) return ncclInvalidArgument;
  delete lc;
  return ncclSuccess;
}

ncclResult_t tcp_get_device_mr(void* comm, void* mhandle, void** dptr_mhandle) {
  if (dptr_mhandle == nullptr) return ncclInvalidArgument;
  *dptr_mhandle = nullptr;
  return ncclSuccess;
}

ncclResult_t tcp_irecv_consumed(void* recv_comm, int n, void* request) {
  RecvComm* rc = RecvComm::from(recv_comm);
  auto* h = static_cast<RequestHeader*>(request);
  if (rc == nullptr || n != 1 || h == nullptr || h->magic != kRequestMagic || h->kind != RequestKind::kRecv)
    return ncclInvalidArgument;
  auto* r = static_cast<RecvRequest*>(h);
  if (r->comm != rc) return ncclInvalidArgument;
  return rc->consumed(r);
}

}  // namespace
}  // namespace tcpx::tcp

extern "C" __attribute__((visibility("default"))) const ncclNet_v7_t ncclNetPlugin_v7 = {
    "TCP",
    tcpx::tcp::tcp_init,
    tcpx::tcp::tcp_devices,
    tcpx::tcp::tcp_get_properties,
    tcpx::tcp::tcp_listen,
    tcpx::tcp::tcp_connect,
    tcpx::tcp::tcp_accept,
    tcpx::tcp::tcp_reg_mr,
    tcpx::tcp::tcp_reg_mr_dmabuf,
    tcpx::tcp::tcp_dereg_mr,
    tcpx::tcp::tcp_isend,
    tcpx::tcp::tcp_irecv,
    tcpx::tcp::tcp_iflush,
    tcpx::tcp::tcp_test,
    tcpx::tcp::tcp_close_send,
    tcpx::tcp::tcp_close_recv,
    tcpx::tcp::tcp_close_listen,
    tcpx::tcp::tcp_get_device_mr,
    tcpx::tcp::tcp_irecv_consumed,
};

extern "C" __attribute__((visibility("default"))) const tcpxNetExt_v1_t tcpxNetExt_v1 = {
    tcpx::tcp::tcp_connect_with_sockets,
};
