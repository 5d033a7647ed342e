// libtcpx_test_host_only_net.so: a test ncclNet v7 plugin with the shape of
// aws-ofi-nccl (AWS EFA), built over the built-in TCP plugin.
//
// What it models, and why each piece is here:
//   * Device type NCCL_NET_DEVICE_HOST, version 0: receives land in place in
//     the caller's buffer; there is no bounce buffer, no loadMeta and nothing
//     to unpack. accept() therefore never writes the caller's device handle.
//   * irecvConsumed, getDeviceMr, regMrDmaBuf and iflush are NULL in the
//     table: NCCL treats all four as optional, so a caller that calls them
//     unconditionally crashes on such a plugin. This is the point of the test
//     plugin: the engine and the conformance suite must check every optional
//     slot before calling it.
//   * ptrSupport is NCCL_PTR_HOST only: without an unpack step a CUDA receive
//     through the inner plugin would stay in its bounce buffer.
//
// The inner (built-in) plugin still needs irecvConsumed after every finished
// receive to free the request slot, so this wrapper remembers which requests
// are receives and consumes each one inside test() the moment it reports
// done. Seen from outside, a receive is finished when test() says so and
// needs nothing more: "a plugin whose receives land in place and needs no
// consume".
//
// The inner plugin is the built-in one by default (its build path is compiled
// in), or TCPX_TEST_HOST_ONLY_INNER. It is initialised once per process, like
// a real plugin's global state; later init() calls return the first result.
#include <dlfcn.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "net/nccl_net_v7.h"

#ifndef TCPX_HOST_ONLY_INNER_PLUGIN
#define TCPX_HOST_ONLY_INNER_PLUGIN "libtcpx_net_tcp.so"
#endif

namespace {

// Set once by the first init(); atomic because entries may run on threads
// that never called init() themselves.
std::atomic<const ncclNet_v7_t*> g_inner{nullptr};
std::atomic<ncclDebugLogger_t> g_logger{nullptr};
std::once_flag g_init_once;
ncclResult_t g_init_result = ncclInternalError;

// Receives posted and not yet finished: request -> its recv comm. Receives
// and sends share test(), so this is how test() tells them apart.
std::mutex g_mu;
std::unordered_map<void*, void*>* g_recvs = new std::unordered_map<void*, void*>();  // never freed: used until exit

void warn(const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (ncclDebugLogger_t logger = g_logger.load(std::memory_order_acquire); logger != nullptr)
    logger(NCCL_LOG_WARN, ~0ul, __FILE__, __LINE__, "NET/HostOnlyTest: %s", msg);
  else
    std::fprintf(stderr, "NET/HostOnlyTest: %s\n", msg);
}

// The built-in plugin bounces host receives when TCPX_P2P_TCP_BOUNCE_HOST=1;
// a HOST device has no unpack, so such receives would never reach the caller.
bool bounce_refused(const char* where) {
  const char* v = std::getenv("TCPX_P2P_TCP_BOUNCE_HOST");
  if (v == nullptr || std::strcmp(v, "1") != 0) return false;
  warn("%s: TCPX_P2P_TCP_BOUNCE_HOST=1 is set, but this plugin's receives must land in place (HOST device "
       "type, no unpack); unset it", where);
  return true;
}

ncclResult_t load_inner(ncclDebugLogger_t logger) {
  g_logger.store(logger, std::memory_order_release);
  const char* env = std::getenv("TCPX_TEST_HOST_ONLY_INNER");
  std::string path = env != nullptr && *env != '\0' ? env : TCPX_HOST_ONLY_INNER_PLUGIN;
  // Kept open for the life of the process, as NCCL keeps plugins.
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char* e = dlerror();
    warn("init: cannot load the inner plugin %s: %s", path.c_str(), e ? e : "?");
    return ncclSystemError;
  }
  auto* inner = static_cast<const ncclNet_v7_t*>(dlsym(dl, NCCL_NET_PLUGIN_SYMBOL_V7));
  if (inner == nullptr || inner->irecvConsumed == nullptr) {
    warn("init: %s has no " NCCL_NET_PLUGIN_SYMBOL_V7 " table with irecvConsumed", path.c_str());
    return ncclInvalidUsage;
  }
  ncclResult_t r = inner->init(logger);
  if (r != ncclSuccess) {
    warn("init: the inner plugin %s refused init (%d)", path.c_str(), static_cast<int>(r));
    return r;
  }
  g_inner.store(inner, std::memory_order_release);
  return ncclSuccess;
}

ncclResult_t host_only_init(ncclDebugLogger_t logger) {
  if (bounce_refused("init")) return ncclInvalidUsage;
  std::call_once(g_init_once, [logger] { g_init_result = load_inner(logger); });
  return g_init_result;
}

// Every entry but init needs the inner table (as `inner`); before a
// successful init the answer is "invalid usage", never a NULL dereference.
#define HOST_ONLY_NEED_INIT()                                            \
  const ncclNet_v7_t* inner = g_inner.load(std::memory_order_acquire); \
  if (inner == nullptr) return ncclInvalidUsage

ncclResult_t host_only_devices(int* ndev) {
  HOST_ONLY_NEED_INIT();
  return inner->devices(ndev);
}

ncclResult_t host_only_get_properties(int dev, ncclNetProperties_v7_t* props) {
  HOST_ONLY_NEED_INIT();
  ncclResult_t r = inner->getProperties(dev, props);
  if (r != ncclSuccess) return r;
  props->netDeviceType = NCCL_NET_DEVICE_HOST;
  props->netDeviceVersion = 0;
  props->ptrSupport = NCCL_PTR_HOST;
  return ncclSuccess;
}

ncclResult_t host_only_listen(int dev, void* handle, void** listen_comm) {
  HOST_ONLY_NEED_INIT();
  // The inner plugin reads the bounce switch at listen time, so check again.
  if (bounce_refused("listen")) return ncclInvalidUsage;
  return inner->listen(dev, handle, listen_comm);
}

ncclResult_t host_only_connect(int dev, void* handle, void** send_comm, ncclNetDeviceHandle_v7_t** send_dev_comm) {
  HOST_ONLY_NEED_INIT();
  return inner->connect(dev, handle, send_comm, send_dev_comm);
}

ncclResult_t host_only_accept(void* listen_comm, void** recv_comm, ncclNetDeviceHandle_v7_t** recv_dev_comm) {
  HOST_ONLY_NEED_INIT();
  // The inner plugin describes its bounce buffer here; that handle is of no
  // use to a caller of a HOST device, so it goes to private storage (the inner
  // plugin writes it only during this call) and *recv_dev_comm is untouched.
  ncclNetDeviceHandle_v7_t inner_storage{};
  ncclNetDeviceHandle_v7_t* inner_dev = &inner_storage;
  return inner->accept(listen_comm, recv_comm, &inner_dev);
}

ncclResult_t host_only_reg_mr(void* comm, void* data, int size, int type, void** mhandle) {
  HOST_ONLY_NEED_INIT();
  // Only what ptrSupport claims: a CUDA receive would be bounced with no unpack.
  if (type != NCCL_PTR_HOST) return ncclInvalidArgument;
  return inner->regMr(comm, data, size, type, mhandle);
}

ncclResult_t host_only_dereg_mr(void* comm, void* mhandle) {
  HOST_ONLY_NEED_INIT();
  return inner->deregMr(comm, mhandle);
}

ncclResult_t host_only_isend(void* send_comm, void* data, int size, int tag, void* mhandle, void** request) {
  HOST_ONLY_NEED_INIT();
  return inner->isend(send_comm, data, size, tag, mhandle, request);
}

ncclResult_t host_only_irecv(void* recv_comm, int n, void** data, int* sizes, int* tags, void** mhandles,
                             void** request) {
  HOST_ONLY_NEED_INIT();
  ncclResult_t r = inner->irecv(recv_comm, n, data, sizes, tags, mhandles, request);
  if (r == ncclSuccess && request != nullptr && *request != nullptr) {
    std::lock_guard<std::mutex> lock(g_mu);
    (*g_recvs)[*request] = recv_comm;
  }
  return r;
}

ncclResult_t host_only_test(void* request, int* done, int* sizes) {
  HOST_ONLY_NEED_INIT();
  ncclResult_t r = inner->test(request, done, sizes);
  if (r != ncclSuccess || done == nullptr || *done == 0) return r;
  void* comm = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_recvs->find(request);
    if (it == g_recvs->end()) return ncclSuccess;  // a send: nothing to consume
    comm = it->second;
    g_recvs->erase(it);
  }
  // The data is already in place (no unpack), so the inner slot is released
  // at once; the caller never sees a consume step. test() only finishes the
  // oldest receive of a comm, so this is post order, as the inner requires.
  r = inner->irecvConsumed(comm, 1, request);
  if (r != ncclSuccess) {
    warn("test: releasing a finished receive failed (%d)", static_cast<int>(r));
    *done = 0;
  }
  return r;
}

// Receives still pending on a comm die with it; forget them so a recycled
// address is never mistaken for one.
void forget_recvs_of(void* comm) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::erase_if(*g_recvs, [comm](const auto& kv) { return kv.second == comm; });
}

ncclResult_t host_only_close_send(void* send_comm) {
  HOST_ONLY_NEED_INIT();
  return inner->closeSend(send_comm);
}

ncclResult_t host_only_close_recv(void* recv_comm) {
  HOST_ONLY_NEED_INIT();
  ncclResult_t r = inner->closeRecv(recv_comm);
  if (r == ncclSuccess) forget_recvs_of(recv_comm);
  return r;
}

ncclResult_t host_only_close_listen(void* listen_comm) {
  HOST_ONLY_NEED_INIT();
  return inner->closeListen(listen_comm);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const ncclNet_v7_t ncclNetPlugin_v7 = {
    "HostOnlyTest",
    host_only_init,
    host_only_devices,
    host_only_get_properties,
    host_only_listen,
    host_only_connect,
    host_only_accept,
    host_only_reg_mr,
    nullptr,  // regMrDmaBuf: optional, absent (as in aws-ofi-nccl's v7 table)
    host_only_dereg_mr,
    host_only_isend,
    host_only_irecv,
    nullptr,  // iflush: optional, absent (host memory needs no flush)
    host_only_test,
    host_only_close_send,
    host_only_close_recv,
    host_only_close_listen,
    nullptr,  // getDeviceMr: optional, absent
    nullptr,  // irecvConsumed: optional, absent (test() already released the receive)
};
