#include "engine/inline_uploads.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "cuda/cuda_ops.h"

namespace tcpx::engine {

namespace {
// Pinned staging in all: a slot per upload in flight, 4 to 64 of them.
constexpr uint64_t kStagingBytes = 4 << 20;
constexpr size_t kMinSlots = 4, kMaxSlots = 64;
}  // namespace

InlineUploads::InlineUploads(unpack::Unpacker* cuda, uint64_t slot_bytes) : cuda_(cuda), slot_bytes_(slot_bytes) {
  if (slot_bytes_ > 0)
    slots_ = std::clamp<size_t>(static_cast<size_t>(kStagingBytes / slot_bytes_), kMinSlots, kMaxSlots);
}

InlineUploads::~InlineUploads() {
  if (staging_ == nullptr) return;
  // The copies read the staging: wait for them (each is at most one eager
  // message, so they end in microseconds unless the device is wedged).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!pending_.empty() && std::chrono::steady_clock::now() < give_up) {
    if (!cuda_->query(pending_.front().ticket).in_progress()) pending_.pop_front();
    else std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  if (!pending_.empty()) {
    TCPX_WARN("%zu inline uploads still running after 2 s; leaving their staging allocated", pending_.size());
    return;
  }
  tcpx::cuda::ops()->host_free(staging_);
}

bool InlineUploads::ensure_staging() {
  if (staging_ != nullptr) return true;
  if (staging_failed_) return false;
  const tcpxCudaOps_v1* ops = tcpx::cuda::ops();
  void* p = nullptr;
  int e = ops != nullptr ? ops->host_alloc_mapped(slots_ * slot_bytes_, &p, nullptr) : -1;
  if (e != 0) {
    staging_failed_ = true;
    TCPX_WARN("no pinned staging for inline bytes into GPU memory (error %d): they go through the plugin", e);
    return false;
  }
  staging_ = static_cast<uint8_t*>(p);
  return true;
}

bool InlineUploads::start(void* owner, void* dst, const uint8_t* src, size_t n) {
  if (cuda_ == nullptr || slots_ == 0 || n > slot_bytes_ || pending_.size() == slots_ || !ensure_staging())
    return false;
  uint8_t* slot = staging_ + ((first_slot_ + pending_.size()) % slots_) * slot_bytes_;
  if (n > 0) std::memcpy(slot, src, n);
  uint64_t ticket = 0;
  Status s = cuda_->submit_copy(dst, slot, n, &ticket);
  if (!s.ok()) {
    // BUSY (the ring is full of unpack jobs) or a destination the copy
    // cannot take: the plugin path still can, or says why.
    TCPX_TRACE("inline upload of %zu bytes not started: %s", n, s.to_string().c_str());
    return false;
  }
  pending_.push_back({owner, ticket});
  return true;
}

bool InlineUploads::poll(std::vector<std::pair<void*, Status>>* done) {
  bool any = false;
  while (!pending_.empty()) {
    Status s = cuda_->query(pending_.front().ticket);
    if (s.in_progress()) break;
    if (pending_.front().owner != nullptr) done->emplace_back(pending_.front().owner, std::move(s));
    pending_.pop_front();
    first_slot_ = (first_slot_ + 1) % slots_;
    any = true;
  }
  return any;
}

void InlineUploads::forget(void* owner) {
  for (auto& p : pending_)
    if (p.owner == owner) p.owner = nullptr;
}

}  // namespace tcpx::engine
