// PyEndpoint: a tcpx::Endpoint as the Python layers hold it.
//
// - Every call runs with the GIL released (call()), on its own reference to
//   the endpoint, so close() from one Python thread never frees it under a
//   call that another thread has in flight.
// - Blocking operations (accept, wait, post-then-wait) run in slices of
//   kSliceMs, taking the GIL back between slices to run PyErr_CheckSignals:
//   Ctrl-C interrupts them with KeyboardInterrupt, nothing hangs the
//   interpreter. An interrupted transfer stays live in the engine (it may
//   still fill or read its buffer); closing its connection ends it.
// - It remembers the regions registered through it: UCCL's API clamps a recv
//   to its registration and descriptors carry extents, and the C++ Endpoint
//   has no "extent of MR id" query.
#ifndef TCPX_PY_PY_ENDPOINT_H_
#define TCPX_PY_PY_ENDPOINT_H_

#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "tcpx/endpoint.h"

namespace tcpx_py {

namespace py = pybind11;

inline constexpr int kSliceMs = 100;

struct Region {
  uintptr_t ptr = 0;
  size_t size = 0;
};

class PyEndpoint {
 public:
  // Posts the i-th transfer of a batch; called with the GIL released.
  using PostFn =
      std::function<tcpx::Status(tcpx::Endpoint&, size_t i, tcpx::XferId*)>;

  static tcpx::Status create(int local_gpu_idx, const tcpx::Config& config,
                             std::shared_ptr<PyEndpoint>* out);
  ~PyEndpoint();

  // Runs f(endpoint) with the GIL released; an error status once closed.
  template <class F>
  tcpx::Status call(F&& f) {
    std::shared_ptr<tcpx::Endpoint> ep = ep_;
    if (!ep) return closed_status();
    py::gil_scoped_release release;
    return f(*ep);
  }
  // The same for calls that return a value rather than a Status.
  template <class F>
  auto get(F&& f) -> decltype(f(std::declval<const tcpx::Endpoint&>())) {
    std::shared_ptr<tcpx::Endpoint> ep = ep_;
    if (!ep) throw_closed();
    return f(*ep);
  }

  // timeout_ms < 0: no deadline (still interruptible, still ends on close()).
  tcpx::Status accept(int timeout_ms, tcpx::ConnId* conn,
                      tcpx::PeerInfo* peer);
  // OK, the transfer's error, or TIMED_OUT (the transfer stays live).
  // bytes: as Endpoint::wait sets it.
  tcpx::Status wait(tcpx::XferId xfer, int timeout_ms, uint64_t* bytes = nullptr);
  // Posts n transfers and waits for all of them; the first error wins, but
  // every posted transfer is waited for, so no buffer is touched after the
  // return. On the fast path (n == 1, done within a slice) this is one GIL
  // release: what the per-call overhead figure measures. bytes: the sum of
  // what Endpoint::wait reports for each.
  tcpx::Status post_and_wait(size_t n, const PostFn& post, uint64_t* bytes = nullptr);

  tcpx::Status reg(uintptr_t ptr, size_t size, tcpx::MrId* out);
  tcpx::Status dereg(tcpx::MrId mr);
  std::optional<Region> region(tcpx::MrId mr) const;

  // Destroys the endpoint (GIL released) once no call is using it. Idempotent.
  void close();
  bool closed() const { return ep_ == nullptr; }
  // For threads of this layer that run without the GIL (uccl_descs.cc);
  // null once closed. Call with the GIL held.
  std::shared_ptr<tcpx::Endpoint> shared() const { return ep_; }

 private:
  explicit PyEndpoint(std::shared_ptr<tcpx::Endpoint> ep) : ep_(std::move(ep)) {}
  static tcpx::Status closed_status();
  [[noreturn]] static void throw_closed();
  // Runs step(slice_ms) with the GIL released until it returns anything but
  // not_yet (what step says when its slice ran out: TIMED_OUT for accept,
  // IN_PROGRESS for a transfer's wait), timeout_ms passes (< 0: never), the
  // endpoint is closed, or a signal handler raises (thrown as
  // py::error_already_set).
  tcpx::Status sliced(int timeout_ms, tcpx::StatusCode not_yet,
                      const std::function<tcpx::Status(int)>& step);
  // Waits for xfer in slices until final, timeout_ms (< 0: none) or a signal.
  tcpx::Status wait_slices(tcpx::Endpoint& ep, tcpx::XferId xfer,
                           int timeout_ms, uint64_t* bytes = nullptr);

  // Read and replaced only with the GIL held; calls copy it first.
  std::shared_ptr<tcpx::Endpoint> ep_;
  std::atomic<bool> closing_{false};
  mutable std::mutex mu_;
  std::unordered_map<tcpx::MrId, Region> regions_;
};

}  // namespace tcpx_py

#endif  // TCPX_PY_PY_ENDPOINT_H_
