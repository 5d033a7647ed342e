// SyncWait: where the op of a blocking call (send, recv, read, write) ends,
// on the caller's stack, instead of an entry in the TransferTable. Such a
// transfer has no XferId anyone could poll, cancel or wait on, so the
// table's lock, lookups and entry recycling buy nothing there (create, end
// and poll: 65-75 ns in a tight loop, more on the latency path, which
// touches them between kernel calls).
//
// complete() runs on the token holder; the caller spins on done() and then
// takes the result, or sleeps in sleep_until(). The caller must not leave
// (destroy this) before done(): a blocking call waits for its op's end,
// which every path delivers (reply, failure, deadline, endpoint stop).
#ifndef TCPX_ENGINE_SYNC_WAIT_H_
#define TCPX_ENGINE_SYNC_WAIT_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "tcpx/status.h"

namespace tcpx::engine {

class SyncWait {
 public:
  // The op ended. True when it woke a caller asleep in sleep_until().
  bool complete(const Status& s, uint64_t bytes) {
    // Under mu_, so that the caller, which takes mu_ before it reads the
    // result (take), cannot free this while we are still inside it.
    std::lock_guard<std::mutex> lock(mu_);
    result_ = s;
    bytes_ = bytes;
    done_.store(true, std::memory_order_release);
    if (!sleeping_) return false;
    cv_.notify_one();
    return true;
  }
  bool done() const { return done_.load(std::memory_order_acquire); }
  // After done(): the op's result, and what a receive got.
  Status take(uint64_t* bytes) {
    std::lock_guard<std::mutex> lock(mu_);  // complete() has left
    if (bytes != nullptr) *bytes = bytes_;
    return result_;
  }
  // Until done() or the deadline; returns done().
  bool sleep_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    sleeping_ = true;
    cv_.wait_until(lock, deadline, [&] { return done_.load(std::memory_order_relaxed); });
    sleeping_ = false;
    return done_.load(std::memory_order_relaxed);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool sleeping_ = false;
  std::atomic<bool> done_{false};
  Status result_;
  uint64_t bytes_ = 0;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_SYNC_WAIT_H_
