#include "engine/mr_table.h"

#include <random>

#include "cuda/cuda_ops.h"

namespace tcpx::engine {
namespace {

MemoryKind kind_of(const void* p) {
  const tcpxCudaOps_v1* ops = cuda::ops();
  if (ops == nullptr || ops->pointer_kind == nullptr) return MemoryKind::kHost;
  int is_device = 0, device = -1;
  if (ops->pointer_kind(p, &is_device, &device) != 0) return MemoryKind::kHost;
  return is_device ? MemoryKind::kCuda : MemoryKind::kHost;
}

}  // namespace

MrTable::MrTable() : token_seed_(std::random_device{}() | (uint64_t{std::random_device{}()} << 32)) {}

Status MrTable::reg(const void* data, size_t size, MrId* out) {
  if (data == nullptr || out == nullptr) return InvalidArgument("reg: null pointer");
  if (size == 0) return InvalidArgument("reg: size is 0");
  auto base = reinterpret_cast<uintptr_t>(data);
  if (base + size < base) return InvalidArgument("reg: region wraps the address space");
  MemoryKind kind = kind_of(data);
  if (kind == MemoryKind::kCuda && (base % 4096) != 0)
    return InvalidArgument("reg: CUDA memory must be 4096-byte aligned (TCPX regMr requirement)");
  std::lock_guard<std::mutex> lock(mu_);
  MrId id = next_id_++;
  // splitmix64 of a random seed: tokens differ per region and per process.
  uint64_t z = (token_seed_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  Entry e;
  e.info = MrInfo{id, z ^ (z >> 31), base, size, kind};
  by_id_.emplace(id, e);
  by_base_[base] = id;  // equal bases: the later one wins for find()
  *out = id;
  return Status::Ok();
}

Status MrTable::dereg(MrId id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return NotFound("dereg: unknown memory region " + std::to_string(id));
  if (it->second.users > 0)
    return Status(StatusCode::kBusy, "dereg: region " + std::to_string(id) + " is used by " +
                                         std::to_string(it->second.users) + " transfer(s)");
  auto b = by_base_.find(it->second.info.base);
  if (b != by_base_.end() && b->second == id) by_base_.erase(b);
  by_id_.erase(it);
  return Status::Ok();
}

Status MrTable::find(const void* data, size_t size, MrId* out) const {
  auto p = reinterpret_cast<uintptr_t>(data);
  std::lock_guard<std::mutex> lock(mu_);
  // Regions may overlap; scan those starting at or below p, nearest first.
  for (auto it = by_base_.upper_bound(p); it != by_base_.begin();) {
    --it;
    const MrInfo& m = by_id_.at(it->second).info;
    if (p - m.base <= m.size && size <= m.size - (p - m.base)) {
      *out = m.id;
      return Status::Ok();
    }
  }
  return NotFound("no registered region contains [" + std::to_string(p) + ", +" + std::to_string(size) + ")");
}

Status MrTable::acquire_local(MrId id, const void* data, size_t size, MrInfo* out) {
  auto p = reinterpret_cast<uintptr_t>(data);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return InvalidArgument("unknown memory region " + std::to_string(id));
  const MrInfo& m = it->second.info;
  if (p < m.base || p - m.base > m.size || size > m.size - (p - m.base))
    return InvalidArgument("buffer [" + std::to_string(p) + ", +" + std::to_string(size) +
                           ") is not inside memory region " + std::to_string(id));
  ++it->second.users;
  *out = m;
  return Status::Ok();
}

Status MrTable::acquire_remote(const FifoFields& f, uint64_t size, MrInfo* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(f.mr_id);
  if (it == by_id_.end() || it->second.info.token != f.mr_token)
    return InvalidArgument("remote region " + std::to_string(f.mr_id) +
                           " is not registered on the target (unknown id, stale token or deregistered)");
  const MrInfo& m = it->second.info;
  if (f.offset > m.size || f.size > m.size - f.offset)
    return InvalidArgument("advertised range [" + std::to_string(f.offset) + ", +" + std::to_string(f.size) +
                           ") is outside remote region " + std::to_string(f.mr_id) + " of " +
                           std::to_string(m.size) + " bytes");
  if (size > f.size)
    return InvalidArgument("request of " + std::to_string(size) + " bytes exceeds the advertised " +
                           std::to_string(f.size));
  ++it->second.users;
  *out = m;
  return Status::Ok();
}

void MrTable::release(MrId id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it != by_id_.end() && it->second.users > 0 && --it->second.users == 0 && unused_waiters_ > 0)
    unused_cv_.notify_all();
}

bool MrTable::wait_unused(MrId id, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  ++unused_waiters_;
  bool unused = unused_cv_.wait_until(lock, deadline, [&] {
    auto it = by_id_.find(id);
    return it == by_id_.end() || it->second.users == 0;
  });
  --unused_waiters_;
  return unused;
}

Status MrTable::lookup(MrId id, MrInfo* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return InvalidArgument("unknown memory region " + std::to_string(id));
  *out = it->second.info;
  return Status::Ok();
}

Status PluginMrCache::get(net::Transport* t, void* comm, const MrInfo& mr, uint64_t offset, uint64_t len,
                          void** mh) {
  uint64_t window = mr.size <= kWindowBytes ? 0 : offset / kWindowStride;
  auto it = handles_.find(key(mr.id, window));
  if (it != handles_.end()) {
    *mh = it->second.get();
    return Status::Ok();
  }
  uint64_t start = window * kWindowStride;
  uint64_t wlen = std::min<uint64_t>(kWindowBytes, mr.size - start);
  if (offset + len > start + wlen) return Internal("chunk does not fit its registration window");
  net::MemHandle h;
  int type = mr.kind == MemoryKind::kCuda ? NCCL_PTR_CUDA : NCCL_PTR_HOST;
  TCPX_RETURN_IF_ERROR(t->reg_mr(comm, reinterpret_cast<void*>(mr.base + start), wlen, type, &h));
  *mh = h.get();
  handles_.emplace(key(mr.id, window), std::move(h));
  return Status::Ok();
}

void PluginMrCache::drop(MrId id) {
  for (auto it = handles_.begin(); it != handles_.end();) {
    if ((it->first >> 24) == id) it = handles_.erase(it);
    else ++it;
  }
}

}  // namespace tcpx::engine
