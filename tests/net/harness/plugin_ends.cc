#include "harness/plugin_ends.h"

#include <sched.h>

#include <chrono>
#include <thread>

namespace tcpx::conformance {
namespace {

using Clock = std::chrono::steady_clock;

const char* rc_symbol(int rc) {
  switch (rc) {
    case 0: return "ncclSuccess";
    case 1: return "ncclUnhandledCudaError";
    case 2: return "ncclSystemError";
    case 3: return "ncclInternalError";
    case 4: return "ncclInvalidArgument";
    case 5: return "ncclInvalidUsage";
    case 6: return "ncclRemoteError";
    case 7: return "ncclInProgress";
  }
  return "unknown";
}

}  // namespace

std::string rc_name(int rc) { return "rc " + std::to_string(rc) + " (" + rc_symbol(rc) + ")"; }

void Backoff::pause() {
  ++n_;
  if (n_ < 64) {
    sched_yield();
  } else {
    int us = n_ < 512 ? 20 : 500;
    std::this_thread::sleep_for(std::chrono::microseconds(us));
  }
}

const unpackNetDeviceHandle* RecvEnd::unpack() const {
  if (dev == nullptr || dev->netDeviceType != NCCL_NET_DEVICE_UNPACK || dev->handle == nullptr) return nullptr;
  return static_cast<const unpackNetDeviceHandle*>(dev->handle);
}

void RecvEnd::close() {
  if (comm != nullptr) {
    ncclResult_t r = net->closeRecv(comm);
    if (r != ncclSuccess) ADD_FAILURE() << "closeRecv returned " << rc_name(r);
    comm = nullptr;
  }
  if (listen_comm != nullptr) {
    ncclResult_t r = net->closeListen(listen_comm);
    if (r != ncclSuccess) ADD_FAILURE() << "closeListen returned " << rc_name(r);
    listen_comm = nullptr;
  }
}

void SendEnd::close() {
  if (comm != nullptr) {
    ncclResult_t r = net->closeSend(comm);
    if (r != ncclSuccess) ADD_FAILURE() << "closeSend returned " << rc_name(r);
    comm = nullptr;
  }
}

ncclResult_t Registration::reg(const ncclNet_v7_t* net, void* comm, void* data, size_t size, int type) {
  reset();
  net_ = net;
  comm_ = comm;
  return net->regMr(comm, data, static_cast<int>(size), type, &mh_);
}

void Registration::reset() {
  if (mh_ != nullptr) {
    ncclResult_t r = net_->deregMr(comm_, mh_);
    if (r != ncclSuccess) ADD_FAILURE() << "deregMr returned " << rc_name(r);
  }
  mh_ = nullptr;
}

Status listen_end(const ncclNet_v7_t* net, int dev, net::NetHandle* handle, RecvEnd* out) {
  out->net = net;
  handle->fill(0);
  ncclResult_t r = net->listen(dev, handle->data(), &out->listen_comm);
  if (r != ncclSuccess) return TransportError("listen returned " + rc_name(r));
  if (out->listen_comm == nullptr) return TransportError("listen returned 0 but no listen comm");
  return Status::Ok();
}

Status accept_end(RecvEnd* end, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Backoff backoff;
  while (end->comm == nullptr) {
    end->dev = &end->dev_storage;
    ncclResult_t r = end->net->accept(end->listen_comm, &end->comm, &end->dev);
    if (r != ncclSuccess) return TransportError("accept returned " + rc_name(r));
    if (end->comm != nullptr) break;
    if (Clock::now() > deadline) return TimedOut("accept: no connection within the deadline");
    backoff.pause();
  }
  return Status::Ok();
}

Status connect_end(const ncclNet_v7_t* net, int dev, net::NetHandle* handle, SendEnd* out, int timeout_ms) {
  out->net = net;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Backoff backoff;
  while (out->comm == nullptr) {
    ncclNetDeviceHandle_v7_t* dh = nullptr;
    ncclResult_t r = net->connect(dev, handle->data(), &out->comm, &dh);
    if (r != ncclSuccess) return TransportError("connect returned " + rc_name(r));
    if (out->comm != nullptr) break;
    if (Clock::now() > deadline) return TimedOut("connect: not connected within the deadline");
    backoff.pause();
  }
  return Status::Ok();
}

namespace {

// Calls post() until it fails, yields a request, or retry_ms passes.
template <typename Post>
ncclResult_t post_until_request(void** request, int retry_ms, Post post) {
  auto deadline = Clock::now() + std::chrono::milliseconds(retry_ms);
  Backoff backoff;
  for (;;) {
    *request = nullptr;
    ncclResult_t r = post();
    if (r != ncclSuccess || *request != nullptr || Clock::now() >= deadline) return r;
    backoff.pause();
  }
}

}  // namespace

ncclResult_t post_irecv(RecvEnd* end, void* data, int size, int tag, void* mhandle, void** request,
                        uint64_t* slot, int retry_ms) {
  ncclResult_t r = post_until_request(request, retry_ms, [&] {
    void* d = data;
    int s = size;
    int t = tag;
    void* m = mhandle;
    return end->net->irecv(end->comm, 1, &d, &s, &t, &m, request);
  });
  if (r == ncclSuccess && *request != nullptr) {
    if (slot != nullptr) *slot = end->posted % NET_UNPACK_MAX_SLICES;
    ++end->posted;
  }
  return r;
}

ncclResult_t post_isend(SendEnd* end, void* data, int size, int tag, void* mhandle, void** request,
                        int retry_ms) {
  return post_until_request(request, retry_ms,
                            [&] { return end->net->isend(end->comm, data, size, tag, mhandle, request); });
}

ncclResult_t consume_recv(const RecvEnd& end, void* request) {
  if (end.net->irecvConsumed == nullptr) return ncclSuccess;
  return end.net->irecvConsumed(end.comm, 1, request);
}

WaitResult wait_request(const ncclNet_v7_t* net, void* request, int timeout_ms) {
  WaitResult w;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Backoff backoff;
  for (;;) {
    int done = 0;
    int sizes = -1;
    ncclResult_t r = net->test(request, &done, &sizes);
    if (r != ncclSuccess) {
      w.rc = r;
      return w;
    }
    if (done) {
      w.done = true;
      w.sizes = sizes;
      return w;
    }
    if (Clock::now() > deadline) return w;
    backoff.pause();
  }
}

::testing::AssertionResult completed(const WaitResult& w, const char* what) {
  if (w.done) return ::testing::AssertionSuccess();
  if (w.rc != ncclSuccess) return ::testing::AssertionFailure() << what << ": test returned " << rc_name(w.rc);
  return ::testing::AssertionFailure() << what << ": not done within " << kPluginTimeoutMs << " ms";
}

}  // namespace tcpx::conformance
