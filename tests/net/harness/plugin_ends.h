// Thin RAII ends over a raw ncclNet v7 table. The suite calls the vtable
// directly (not tcpx::net::Transport's wrappers) because it asserts on the
// exact return codes the contract names.
#ifndef TCPX_TESTS_NET_HARNESS_PLUGIN_ENDS_H_
#define TCPX_TESTS_NET_HARNESS_PLUGIN_ENDS_H_

#include <gtest/gtest.h>

#include <cstdint>

#include "net/nccl_net_v7.h"
#include "net/transport.h"
#include "tcpx/status.h"

namespace tcpx::conformance {

// Bound on any single plugin wait (connect, accept, one request).
inline constexpr int kPluginTimeoutMs = 20000;

// "rc 3 (ncclInternalError)".
std::string rc_name(int rc);

// A listen comm plus the recv comm accepted on it.
struct RecvEnd {
  const ncclNet_v7_t* net = nullptr;
  void* listen_comm = nullptr;
  void* comm = nullptr;
  ncclNetDeviceHandle_v7_t dev_storage{};        // what accept writes into
  ncclNetDeviceHandle_v7_t* dev = &dev_storage;  // what accept left pointing at it
  uint64_t posted = 0;                           // irecvs posted: slot = posted % 16

  RecvEnd() = default;
  RecvEnd(const RecvEnd&) = delete;
  RecvEnd& operator=(const RecvEnd&) = delete;
  ~RecvEnd() { close(); }
  // The unpack handle when the plugin publishes one (UNPACK device type).
  const unpackNetDeviceHandle* unpack() const;
  void close();
};

struct SendEnd {
  const ncclNet_v7_t* net = nullptr;
  void* comm = nullptr;
  SendEnd() = default;
  SendEnd(const SendEnd&) = delete;
  SendEnd& operator=(const SendEnd&) = delete;
  ~SendEnd() { close(); }
  void close();
};

// A regMr result that deregisters itself. Declare it after the end it was
// registered on so it is destroyed first.
class Registration {
 public:
  Registration() = default;
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  ~Registration() { reset(); }
  ncclResult_t reg(const ncclNet_v7_t* net, void* comm, void* data, size_t size, int type);
  void* get() const { return mh_; }
  void reset();
  // Forgets the handle without deregMr (a plugin already freed it).
  void release() { mh_ = nullptr; }

 private:
  const ncclNet_v7_t* net_ = nullptr;
  void* comm_ = nullptr;
  void* mh_ = nullptr;
};

// listen() on dev; the handle bytes to ship land in *handle.
Status listen_end(const ncclNet_v7_t* net, int dev, net::NetHandle* handle, RecvEnd* out);
// Calls accept until it yields a comm (non-blocking contract), pausing
// between calls; fails on an error code or after timeout_ms.
Status accept_end(RecvEnd* end, int timeout_ms = kPluginTimeoutMs);
// Calls connect with the same handle buffer until it yields a comm (plugins
// may keep connection state inside the handle bytes, as NCCL's do).
Status connect_end(const ncclNet_v7_t* net, int dev, net::NetHandle* handle, SendEnd* out,
                   int timeout_ms = kPluginTimeoutMs);

// NCCL's rule: isend and irecv may return success with a NULL request,
// meaning "not now, call again" (aws-ofi-nccl does so while its libfabric
// connection is still being set up). Both helpers below call again until a
// request comes, an error does, or retry_ms passes (then success with
// *request NULL; 0 = one attempt).
//
// One irecv with n = 1; when it yields a request, counts it in end->posted
// and reports the unpack slot it owns (posted % 16).
ncclResult_t post_irecv(RecvEnd* end, void* data, int size, int tag, void* mhandle, void** request,
                        uint64_t* slot = nullptr, int retry_ms = kPluginTimeoutMs);
ncclResult_t post_isend(SendEnd* end, void* data, int size, int tag, void* mhandle, void** request,
                        int retry_ms = kPluginTimeoutMs);

// Releases a finished receive. irecvConsumed is optional in NCCL's v7 ABI: a
// plugin whose receives land in place with nothing to release (aws-ofi-nccl,
// the test plugin libtcpx_test_host_only_net.so) leaves the slot NULL, and
// then there is nothing to call. Never call the slot directly in a test that
// may run against such a plugin.
ncclResult_t consume_recv(const RecvEnd& end, void* request);

struct WaitResult {
  ncclResult_t rc = ncclSuccess;  // the first non-zero code test() returned
  bool done = false;              // false with rc 0: the deadline passed
  int sizes = -1;                 // what test() left in *sizes (initialised -1)
};
// Calls test() on `request` until done, an error, or timeout_ms.
WaitResult wait_request(const ncclNet_v7_t* net, void* request, int timeout_ms = kPluginTimeoutMs);
::testing::AssertionResult completed(const WaitResult& w, const char* what);

// The pause between polls of test()/accept()/connect(): short at first (data
// usually arrives at once on loopback), growing so a waiting half does not
// steal a core from the other on a 2-core host.
class Backoff {
 public:
  void pause();
  void reset() { n_ = 0; }

 private:
  int n_ = 0;
};

}  // namespace tcpx::conformance

#endif  // TCPX_TESTS_NET_HARNESS_PLUGIN_ENDS_H_
