// TransferTable: the user-visible state of every transfer (one entry per
// XferId, one status per piece). Written by the progress-token holder when
// pieces end, read by poll_async/wait/piece_status from any thread. wait()
// blocks on a condition variable of its own, registered in the entry, so a
// finished transfer wakes its waiter only (a second waiter of the same
// transfer falls back to the shared one); nothing here spins.
#ifndef TCPX_ENGINE_TRANSFER_TABLE_H_
#define TCPX_ENGINE_TRANSFER_TABLE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tcpx/endpoint.h"

namespace tcpx::engine {

class SyncWait;

class TransferTable {
 public:
  TransferTable();
  XferId create(size_t pieces);
  // Records the end of one piece (bytes: what a receive got).
  void piece_done(XferId id, size_t piece, const Status& s, uint64_t bytes);
  // An op ended: into the blocking call's SyncWait when it has one, else
  // into its transfer's piece (none for a target-side op, id 0).
  void op_done(XferId id, size_t piece, SyncWait* sync, const Status& s, uint64_t bytes);
  Status poll(XferId id, uint64_t* bytes = nullptr);
  // IN_PROGRESS when timeout_ms passes first (the transfer stays live).
  Status wait(XferId id, int timeout_ms, uint64_t* bytes = nullptr);
  // A live transfer's piece, or a retired vector transfer's while it is among
  // the kKeptRetired most recent ones (and kKeptPieces pieces in all);
  // NOT_FOUND after that. One-piece transfers are not kept: their final
  // status was the piece's.
  Status piece_status(XferId id, size_t piece, Status* out) const;
  static constexpr size_t kKeptRetired = 1024;
  static constexpr size_t kKeptPieces = 65536;
  // Whether id names a transfer that has not ended yet.
  bool running(XferId id) const;
  // Drops an entry whose work was never posted (the post itself failed).
  void forget(XferId id);
  // How many times a blocked wait() has been woken so far: the background
  // thread does not spin on after a pass that woke an application thread,
  // which takes over from there (Progress::loop).
  uint64_t waiters_woken() const { return waiters_woken_.load(std::memory_order_relaxed); }
  // How many transfers have become final so far. A spinning waiter polls
  // its transfer (a lock and a lookup) only when this moved: read it before
  // the poll, and a transfer ending after that poll moves it.
  uint64_t finals() const { return finals_.load(std::memory_order_acquire); }
  // What a poll of a running transfer answers. Short enough for
  // std::string's in-place buffer: such a poll allocates nothing either.
  static Status in_progress() { return Status(StatusCode::kInProgress, "in progress"); }

 private:
  struct Entry {
    std::vector<Status> pieces;
    size_t pending = 0;
    uint64_t bytes = 0;
    Status result;
    std::condition_variable* waiter = nullptr;  // the blocked wait(), if any
  };
  // Caller holds mu_. Final status, retiring the entry, or IN_PROGRESS.
  Status take_if_final(std::unordered_map<XferId, Entry>::iterator it, uint64_t* bytes);
  // Caller holds mu_: wakes whoever waits on e (it re-checks under mu_).
  void wake(const Entry& e);
  // Caller holds mu_: files a retired vector transfer's piece results,
  // dropping the oldest past the bounds.
  void keep_retired(XferId id, std::vector<Status>&& pieces);
  // Caller holds mu_: removes the entry, keeping its node for a later
  // create() (a transfer posted costs no allocation here once warm).
  void retire(std::unordered_map<XferId, Entry>::iterator it);
  static constexpr size_t kSpareEntries = 256;
  mutable std::mutex mu_;
  std::condition_variable shared_cv_;  // second and later waiters of one id
  size_t shared_waiters_ = 0;
  std::unordered_map<XferId, Entry> entries_;
  std::vector<std::unordered_map<XferId, Entry>::node_type> spare_;
  std::unordered_map<XferId, std::vector<Status>> retired_;
  std::deque<XferId> retired_order_;  // oldest first
  size_t retired_pieces_ = 0;
  XferId next_ = 1;
  std::atomic<uint64_t> waiters_woken_{0};
  std::atomic<uint64_t> finals_{0};
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_TRANSFER_TABLE_H_
