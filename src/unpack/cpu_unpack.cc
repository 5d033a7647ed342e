// The CPU unpacker: validates a slot's whole loadMeta list, then copies each
// fragment with memcpy on the calling thread. Validating first means a job
// with one bad entry writes nothing at all into the destination.
#include <atomic>
#include <cstring>
#include <string>

#include "unpack/unpacker.h"

namespace tcpx::unpack {
namespace {

Status bad_entry(const UnpackJob& job, uint64_t i, const loadMeta& m, const char* what) {
  return InvalidArgument("unpack slot " + std::to_string(job.slot) + " entry " + std::to_string(i) +
                         " (src_off " + std::to_string(m.src_off) + ", len " + std::to_string(m.len) +
                         ", dst_off " + std::to_string(m.dst_off) + "): " + what);
}

// Checks every entry of the job's slot; on success *count is cnt[slot].
Status validate(const UnpackJob& job, uint64_t* count) {
  if (job.meta == nullptr || job.bounce_buf == nullptr || job.dst == nullptr)
    return InvalidArgument("unpack job has a null meta, bounce_buf or dst");
  if (job.slot < 0 || job.slot >= NET_UNPACK_MAX_SLICES)
    return InvalidArgument("unpack slot " + std::to_string(job.slot) + " out of range 0..15");
  if (job.dst_is_device)
    return Unsupported("the CPU unpacker cannot write device memory; use make_cuda_unpacker");
  const uint64_t cnt = job.meta->cnt[job.slot];
  if (cnt > NET_UNPACK_MAX_SLICE_PAGES)
    return InvalidArgument("unpack slot " + std::to_string(job.slot) + " has cnt " + std::to_string(cnt) +
                           " > " + std::to_string(NET_UNPACK_MAX_SLICE_PAGES));
  const loadMeta* entries = job.meta->mem[job.slot];
  for (uint64_t i = 0; i < cnt; ++i) {
    const loadMeta& m = entries[i];
    if (m.len > NET_UNPACK_PAGE_SIZE) return bad_entry(job, i, m, "len > 4096");
    // Compare with the room left instead of adding, so huge offsets cannot wrap.
    if (m.dst_off > job.dst_capacity || m.len > job.dst_capacity - m.dst_off)
      return bad_entry(job, i, m, ("ends past dst_capacity " + std::to_string(job.dst_capacity)).c_str());
    if (job.bounce_capacity != 0 &&
        (m.src_off > job.bounce_capacity || m.len > job.bounce_capacity - m.src_off))
      return bad_entry(job, i, m,
                       ("reads past bounce_capacity " + std::to_string(job.bounce_capacity)).c_str());
  }
  *count = cnt;
  return Status::Ok();
}

class CpuUnpacker final : public Unpacker {
 public:
  Status submit(const UnpackJob& job, uint64_t* ticket) override {
    if (ticket == nullptr) return InvalidArgument("unpack submit: ticket is null");
    uint64_t cnt = 0;
    TCPX_RETURN_IF_ERROR(validate(job, &cnt));
    const auto* src = static_cast<const uint8_t*>(job.bounce_buf);
    auto* dst = static_cast<uint8_t*>(job.dst);
    const loadMeta* entries = job.meta->mem[job.slot];
    for (uint64_t i = 0; i < cnt; ++i)
      std::memcpy(dst + entries[i].dst_off, src + entries[i].src_off, entries[i].len);
    // The copy is done before the ticket exists, so every issued ticket is OK.
    *ticket = next_.fetch_add(1, std::memory_order_acq_rel);
    return Status::Ok();
  }

  Status query(uint64_t ticket) override {
    // Every issued ticket stays OK however many follow it: an owner that
    // queries late (its receive waited behind a GPU job) must not find its
    // finished copy forgotten.
    if (ticket >= next_.load(std::memory_order_acquire))
      return NotFound("unpack ticket " + std::to_string(ticket) + " never issued");
    return Status::Ok();
  }

  const char* name() const override { return "cpu"; }

 private:
  std::atomic<uint64_t> next_{0};
};

}  // namespace

std::unique_ptr<Unpacker> make_cpu_unpacker() { return std::make_unique<CpuUnpacker>(); }

}  // namespace tcpx::unpack
