#include "py_endpoint.h"

#include <chrono>

#include "status_error.h"

namespace tcpx_py {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// With the GIL held: raises KeyboardInterrupt (or whatever a signal handler
// raised) into Python.
void check_signals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

}  // namespace

tcpx::Status PyEndpoint::create(int local_gpu_idx, const tcpx::Config& config,
                                std::shared_ptr<PyEndpoint>* out) {
  std::unique_ptr<tcpx::Endpoint> ep;
  tcpx::Status s;
  {
    py::gil_scoped_release release;
    s = tcpx::Endpoint::create(local_gpu_idx, config, &ep);
  }
  if (!s.ok()) return s;
  out->reset(new PyEndpoint(std::shared_ptr<tcpx::Endpoint>(std::move(ep))));
  return s;
}

PyEndpoint::~PyEndpoint() { close(); }

void PyEndpoint::close() {
  closing_ = true;
  std::shared_ptr<tcpx::Endpoint> last = std::move(ep_);
  ep_ = nullptr;
  if (!last) return;
  // The destructor joins the engine threads: let other Python threads run.
  // A call in flight holds its own reference and frees it when it returns.
  py::gil_scoped_release release;
  last.reset();
}

tcpx::Status PyEndpoint::closed_status() {
  return tcpx::NotFound("endpoint is closed");
}

void PyEndpoint::throw_closed() { throw StatusError(closed_status()); }

tcpx::Status PyEndpoint::sliced(int timeout_ms, tcpx::StatusCode not_yet,
                                const std::function<tcpx::Status(int)>& step) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int slice = timeout_ms < 0 ? kSliceMs
                               : std::min(kSliceMs, remaining_ms(deadline));
    tcpx::Status s;
    {
      py::gil_scoped_release release;
      s = step(slice);
    }
    if (s.code() != not_yet) return s;
    // Closed by another thread: stop waiting so the engine can go (its
    // destructor fails what is still outstanding).
    if (closing_) return closed_status();
    check_signals();
    if (timeout_ms >= 0 && remaining_ms(deadline) == 0) return s;
  }
}

tcpx::Status PyEndpoint::accept(int timeout_ms, tcpx::ConnId* conn,
                                tcpx::PeerInfo* peer) {
  std::shared_ptr<tcpx::Endpoint> ep = ep_;
  if (!ep) return closed_status();
  return sliced(timeout_ms, tcpx::StatusCode::kTimedOut,
                [&](int slice) { return ep->accept(conn, peer, slice); });
}

tcpx::Status PyEndpoint::wait_slices(tcpx::Endpoint& ep, tcpx::XferId xfer,
                                     int timeout_ms, uint64_t* bytes) {
  return sliced(timeout_ms, tcpx::StatusCode::kInProgress,
                [&](int slice) { return ep.wait(xfer, slice, bytes); });
}

tcpx::Status PyEndpoint::wait(tcpx::XferId xfer, int timeout_ms, uint64_t* bytes) {
  std::shared_ptr<tcpx::Endpoint> ep = ep_;
  if (!ep) return closed_status();
  return wait_slices(*ep, xfer, timeout_ms, bytes);
}

tcpx::Status PyEndpoint::post_and_wait(size_t n, const PostFn& post, uint64_t* bytes) {
  std::shared_ptr<tcpx::Endpoint> ep = ep_;
  if (!ep) return closed_status();
  std::vector<tcpx::XferId> posted;
  posted.reserve(n);
  tcpx::Status first;
  tcpx::Status last_wait;
  uint64_t total = 0, one = 0;
  {
    py::gil_scoped_release release;
    for (size_t i = 0; i < n && first.ok(); ++i) {
      tcpx::XferId x = 0;
      first = post(*ep, i, &x);
      if (first.ok()) posted.push_back(x);
    }
    // Fast path: a single transfer that finishes within one slice never
    // takes the GIL back in between.
    if (posted.size() == 1) last_wait = ep->wait(posted[0], kSliceMs, &one);
  }
  size_t begin = 0;
  if (posted.size() == 1) {
    if (!last_wait.in_progress()) {
      if (first.ok()) first = last_wait;
      total += one;
      begin = 1;
    } else {
      check_signals();
    }
  }
  for (size_t i = begin; i < posted.size(); ++i) {
    one = 0;
    tcpx::Status s = wait_slices(*ep, posted[i], -1, &one);
    if (first.ok()) first = s;
    total += one;
  }
  if (bytes != nullptr) *bytes = total;
  return first;
}

tcpx::Status PyEndpoint::reg(uintptr_t ptr, size_t size, tcpx::MrId* out) {
  tcpx::Status s = call([&](tcpx::Endpoint& ep) {
    return ep.reg(reinterpret_cast<const void*>(ptr), size, out);
  });
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    regions_[*out] = Region{ptr, size};
  }
  return s;
}

tcpx::Status PyEndpoint::dereg(tcpx::MrId mr) {
  tcpx::Status s = call([&](tcpx::Endpoint& ep) { return ep.dereg(mr); });
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    regions_.erase(mr);
  }
  return s;
}

std::optional<Region> PyEndpoint::region(tcpx::MrId mr) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = regions_.find(mr);
  if (it == regions_.end()) return std::nullopt;
  return it->second;
}

}  // namespace tcpx_py
