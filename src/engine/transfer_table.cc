#include "engine/transfer_table.h"

#include <chrono>
#include <string>

#include "engine/sync_wait.h"

namespace tcpx::engine {

TransferTable::TransferTable() { spare_.reserve(kSpareEntries); }

XferId TransferTable::create(size_t pieces) {
  std::lock_guard<std::mutex> lock(mu_);
  XferId id = next_++;
  Entry* e = nullptr;
  if (!spare_.empty()) {
    // A retired entry's node: no allocation (its pieces vector keeps its
    // capacity too).
    auto node = std::move(spare_.back());
    spare_.pop_back();
    node.key() = id;
    Entry fresh;
    fresh.pieces = std::move(node.mapped().pieces);
    node.mapped() = std::move(fresh);
    e = &entries_.insert(std::move(node)).position->second;
  } else {
    e = &entries_[id];
  }
  e->pieces.assign(pieces, in_progress());
  e->pending = pieces;
  return id;
}

void TransferTable::wake(const Entry& e) {
  // Under mu_: a waiter's condition variable lives on its stack and is
  // unregistered, under mu_, before that frame goes away.
  if (e.waiter == nullptr && shared_waiters_ == 0) return;
  if (e.waiter != nullptr) e.waiter->notify_one();
  if (shared_waiters_ > 0) shared_cv_.notify_all();
  waiters_woken_.fetch_add(1, std::memory_order_relaxed);
}

void TransferTable::piece_done(XferId id, size_t piece, const Status& s, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || piece >= it->second.pieces.size()) return;
  Entry& e = it->second;
  if (!e.pieces[piece].in_progress()) return;  // already final (defensive)
  e.pieces[piece] = s;
  e.bytes += bytes;
  if (!s.ok() && e.result.ok()) {
    e.result = e.pieces.size() > 1 ? Status(s.code(), "piece " + std::to_string(piece) + ": " + s.message()) : s;
  }
  if (--e.pending == 0) {
    finals_.fetch_add(1, std::memory_order_release);
    wake(e);
  }
}

void TransferTable::op_done(XferId id, size_t piece, SyncWait* sync, const Status& s, uint64_t bytes) {
  if (sync != nullptr) {
    if (sync->complete(s, bytes)) waiters_woken_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (id != 0) piece_done(id, piece, s, bytes);
}

Status TransferTable::take_if_final(std::unordered_map<XferId, Entry>::iterator it, uint64_t* bytes) {
  Entry& e = it->second;
  if (e.pending != 0) return in_progress();
  Status r = e.result;
  if (bytes != nullptr) *bytes = e.bytes;
  wake(e);  // another thread's wait() on this id ends with NOT_FOUND
  if (e.pieces.size() > 1) keep_retired(it->first, std::move(e.pieces));
  retire(it);
  return r;
}

void TransferTable::retire(std::unordered_map<XferId, Entry>::iterator it) {
  auto node = entries_.extract(it);
  if (spare_.size() < kSpareEntries) spare_.push_back(std::move(node));
}

void TransferTable::keep_retired(XferId id, std::vector<Status>&& pieces) {
  if (pieces.size() > kKeptPieces) return;
  retired_pieces_ += pieces.size();
  retired_.emplace(id, std::move(pieces));
  retired_order_.push_back(id);
  while (retired_order_.size() > kKeptRetired || retired_pieces_ > kKeptPieces) {
    auto old = retired_.find(retired_order_.front());
    retired_pieces_ -= old->second.size();
    retired_.erase(old);
    retired_order_.pop_front();
  }
}

bool TransferTable::running(XferId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.pending > 0;
}

Status TransferTable::poll(XferId id, uint64_t* bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return NotFound("unknown or already retired transfer " + std::to_string(id));
  return take_if_final(it, bytes);
}

Status TransferTable::wait(XferId id, int timeout_ms, uint64_t* bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  // Registered in the entry once we block: the first waiter of an id gets a
  // condition variable of its own, any further one the shared one.
  std::condition_variable own;
  std::condition_variable* cv = nullptr;
  auto unregister = [&] {
    if (cv == &shared_cv_) {
      --shared_waiters_;
    } else if (cv == &own) {
      auto j = entries_.find(id);
      if (j != entries_.end() && j->second.waiter == &own) j->second.waiter = nullptr;
    }
  };
  bool timed_out = false;
  for (;;) {
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      unregister();
      return NotFound(cv == nullptr ? "unknown or already retired transfer " + std::to_string(id)
                                    : "transfer " + std::to_string(id) + " was retired by another caller");
    }
    if (it->second.pending == 0) {
      unregister();
      return take_if_final(it, bytes);
    }
    if (timed_out || timeout_ms == 0) {
      // IN_PROGRESS, not TIMED_OUT: that is a final status (a transfer's
      // own deadline), and a caller waiting in slices must tell them apart.
      unregister();
      return Status(StatusCode::kInProgress,
                    "transfer " + std::to_string(id) + " not done after " + std::to_string(timeout_ms) + " ms");
    }
    if (cv == nullptr) {
      if (it->second.waiter == nullptr) {
        it->second.waiter = &own;
        cv = &own;
      } else {
        ++shared_waiters_;
        cv = &shared_cv_;
      }
    }
    if (timeout_ms < 0) cv->wait(lock);
    else timed_out = cv->wait_until(lock, deadline) == std::cv_status::timeout;
  }
}

Status TransferTable::piece_status(XferId id, size_t piece, Status* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::vector<Status>* pieces = nullptr;
  if (auto it = entries_.find(id); it != entries_.end()) pieces = &it->second.pieces;
  else if (auto r = retired_.find(id); r != retired_.end()) pieces = &r->second;
  if (pieces == nullptr)
    return NotFound("unknown transfer " + std::to_string(id) + ", or retired too long ago (the piece results of the " +
                    std::to_string(kKeptRetired) + " most recent vector transfers are kept)");
  if (piece >= pieces->size())
    return InvalidArgument("transfer " + std::to_string(id) + " has " + std::to_string(pieces->size()) + " pieces");
  *out = (*pieces)[piece];
  return Status::Ok();
}

void TransferTable::forget(XferId id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries_.find(id); it != entries_.end()) retire(it);
}

}  // namespace tcpx::engine
