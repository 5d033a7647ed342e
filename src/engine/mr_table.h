// MrTable: the endpoint's memory registrations. Registration is bookkeeping
// only (base, size, kind, a random token for FifoItems); plugin regMr happens
// lazily per (comm, region window) in PluginMrCache. Thread-safe.
//
// A region in use by a transfer (local or a peer's request being served) has
// users > 0 and cannot be deregistered (BUSY); every transfer acquires the
// regions it touches when it is posted and releases them when it ends.
#ifndef TCPX_ENGINE_MR_TABLE_H_
#define TCPX_ENGINE_MR_TABLE_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

#include "engine/fifo_item.h"
#include "net/transport.h"
#include "tcpx/endpoint.h"

namespace tcpx::engine {

struct MrInfo {
  MrId id = 0;
  uint64_t token = 0;
  uintptr_t base = 0;
  size_t size = 0;
  MemoryKind kind = MemoryKind::kHost;
};

class MrTable {
 public:
  MrTable();
  Status reg(const void* data, size_t size, MrId* out);
  // BUSY while in use; NOT_FOUND if unknown.
  Status dereg(MrId id);
  Status find(const void* data, size_t size, MrId* out) const;
  // Checks that [data, data+size) lies inside region `id` and marks it used.
  Status acquire_local(MrId id, const void* data, size_t size, MrInfo* out);
  // Validates a peer's request against a FifoItem's fields (region exists,
  // token matches, offset + size inside it with overflow-safe math) and marks
  // it used. The error message says which check failed.
  Status acquire_remote(const FifoFields& f, uint64_t size, MrInfo* out);
  void release(MrId id);
  // Blocks until region id has no users (true; also when it is gone) or the
  // deadline passes (false). Woken by the release that drops the last user.
  bool wait_unused(MrId id, std::chrono::steady_clock::time_point deadline);
  // For advertise(): the region's info without acquiring it.
  Status lookup(MrId id, MrInfo* out) const;

 private:
  struct Entry {
    MrInfo info;
    int users = 0;
  };
  mutable std::mutex mu_;
  std::condition_variable unused_cv_;  // a region's last user left
  int unused_waiters_ = 0;
  std::unordered_map<MrId, Entry> by_id_;
  std::map<uintptr_t, MrId> by_base_;  // for find() by containment
  MrId next_id_ = 1;
  uint64_t token_seed_;
};

// Plugin registrations of one comm, keyed by (MR, window). The v7 ABI takes an
// int size, so regions larger than 1 GiB are registered in 1 GiB windows that
// start every 512 MiB: any chunk of at most 4 MiB fits entirely in the window
// that starts at or below it. Owned by the progress thread.
class PluginMrCache {
 public:
  static constexpr uint64_t kWindowStride = 512ull << 20;
  static constexpr uint64_t kWindowBytes = 1ull << 30;

  // The handle covering [offset, offset + len) of `mr` (len <= 4 MiB),
  // registering it on `comm` first if needed.
  Status get(net::Transport* t, void* comm, const MrInfo& mr, uint64_t offset, uint64_t len, void** mh);
  // Drops (deregisters) every handle of one region.
  void drop(MrId id);
  void clear() { handles_.clear(); }

 private:
  static uint64_t key(MrId id, uint64_t window) { return (id << 24) | window; }
  std::unordered_map<uint64_t, net::MemHandle> handles_;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_MR_TABLE_H_
