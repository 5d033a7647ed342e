#include "engine/inline_staging.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "cuda/cuda_ops.h"

namespace tcpx::engine {

namespace {
// Pinned staging in all: a slot per copy in flight, 4 to 64 of them.
constexpr uint64_t kStagingBytes = 4 << 20;
constexpr size_t kMinSlots = 4, kMaxSlots = 64;
}  // namespace

InlineStaging::InlineStaging(unpack::Unpacker* cuda, uint64_t slot_bytes) : cuda_(cuda), slot_bytes_(slot_bytes) {
  if (slot_bytes_ > 0)
    slots_ = std::clamp<size_t>(static_cast<size_t>(kStagingBytes / slot_bytes_), kMinSlots, kMaxSlots);
}

InlineStaging::~InlineStaging() {
  if (staging_ == nullptr) return;
  // The copies use the staging: wait for them (each is at most one eager
  // message, so they end in microseconds unless the device is wedged).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!pending_.empty() && std::chrono::steady_clock::now() < give_up) {
    if (!cuda_->query(pending_.front().ticket).in_progress()) pending_.pop_front();
    else std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  if (!pending_.empty()) {
    TCPX_WARN("%zu inline copies to or from GPU memory still running after 2 s; leaving their staging allocated",
              pending_.size());
    return;
  }
  tcpx::cuda::ops()->host_free(staging_);
}

uint8_t* InlineStaging::next_slot(size_t n) {
  if (cuda_ == nullptr || slots_ == 0 || n > slot_bytes_ || pending_.size() == slots_ || staging_failed_)
    return nullptr;
  if (staging_ == nullptr) {
    const tcpxCudaOps_v1* ops = tcpx::cuda::ops();
    void* p = nullptr;
    int e = ops != nullptr ? ops->host_alloc_mapped(slots_ * slot_bytes_, &p, nullptr) : -1;
    if (e != 0) {
      staging_failed_ = true;
      TCPX_WARN("no pinned staging for inline bytes to or from GPU memory (error %d): they go through the plugin",
                e);
      return nullptr;
    }
    staging_ = static_cast<uint8_t*>(p);
  }
  return slot((first_slot_ + pending_.size()) % slots_);
}

bool InlineStaging::start_upload(void* owner, void* dst, const uint8_t* src, size_t n) {
  uint8_t* s = next_slot(n);
  if (s == nullptr) return false;
  if (n > 0) std::memcpy(s, src, n);
  return submit(owner, dst, s, n, "upload");
}

bool InlineStaging::start_download(void* owner, const void* src, size_t n) {
  uint8_t* s = next_slot(n);
  return s != nullptr && submit(owner, s, src, n, "download");
}

bool InlineStaging::submit(void* owner, void* dst, const void* src, size_t n, const char* what) {
  uint64_t ticket = 0;
  Status st = cuda_->submit_copy(dst, src, n, &ticket);
  if (!st.ok()) {
    // BUSY (the ring is full of unpack jobs) or memory the copy cannot
    // take: the plugin path still can, or says why.
    TCPX_TRACE("inline %s of %zu bytes not started: %s", what, n, st.to_string().c_str());
    return false;
  }
  pending_.push_back({owner, ticket});
  return true;
}

bool InlineStaging::front_done(Done* d) {
  if (pending_.empty()) return false;
  Status s = cuda_->query(pending_.front().ticket);
  if (s.in_progress()) return false;
  d->owner = pending_.front().owner;
  d->status = std::move(s);
  d->staged = slot(first_slot_);
  return true;
}

void InlineStaging::pop_front() {
  pending_.pop_front();
  first_slot_ = (first_slot_ + 1) % slots_;
}

void InlineStaging::forget(void* owner) {
  for (auto& p : pending_)
    if (p.owner == owner) p.owner = nullptr;
}

}  // namespace tcpx::engine
