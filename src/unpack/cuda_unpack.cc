// The GPU unpacker as the core sees it: a thin Unpacker over the unpacker_*
// entries of the CUDA table. The kernel, its stream and its events live in
// libtcpx_cuda.so; this file includes no CUDA header.
#include <mutex>
#include <string>

#include "cuda/cuda_ops.h"
#include "unpack/ticket_window.h"
#include "unpack/unpacker.h"

namespace tcpx::unpack {
namespace {

Status cuda_status(const tcpxCudaOps_v1* ops, int err, const std::string& what) {
  std::string m = what + ": " + ops->error_string(err) + " (" + std::to_string(err) + ")";
  switch (err) {
    case TCPX_CUDA_ERR_BUSY: return Status(StatusCode::kBusy, m);
    case TCPX_CUDA_ERR_BAD_JOB:
    case TCPX_CUDA_ERR_META_UNREACHABLE:
    case TCPX_CUDA_ERR_BOUNCE_UNREACHABLE:
    case TCPX_CUDA_ERR_DST_UNREACHABLE:
    case TCPX_CUDA_ERR_INVALID: return InvalidArgument(m);
    case TCPX_CUDA_ERR_UNKNOWN_TICKET: return NotFound(m);
    default: return Status(StatusCode::kCudaError, m);
  }
}

std::string bad_flags_text(uint32_t bad) {
  std::string s;
  if (bad & TCPX_CUDA_BAD_LEN) s += " len > 4096;";
  if (bad & TCPX_CUDA_BAD_DST) s += " dst_off + len past dst_capacity;";
  if (bad & TCPX_CUDA_BAD_SRC) s += " src_off + len past bounce_capacity;";
  return s;
}

class CudaUnpacker final : public Unpacker {
 public:
  CudaUnpacker(const tcpxCudaOps_v1* ops, void* handle, int gpu) : ops_(ops), handle_(handle), gpu_(gpu) {}
  ~CudaUnpacker() override {
    // Nothing to hand the error to; the stream is idle or broken either way.
    ops_->unpacker_destroy(handle_);
  }

  Status submit(const UnpackJob& job, uint64_t* ticket) override {
    if (ticket == nullptr) return InvalidArgument("unpack submit: ticket is null");
    if (job.meta == nullptr || job.bounce_buf == nullptr || job.dst == nullptr)
      return InvalidArgument("unpack job has a null meta, bounce_buf or dst");
    if (job.slot < 0 || job.slot >= NET_UNPACK_MAX_SLICES)
      return InvalidArgument("unpack slot " + std::to_string(job.slot) + " out of range 0..15");
    tcpxCudaUnpackJob j{};
    j.meta = job.meta;
    j.slot = job.slot;
    j.bounce_buf = job.bounce_buf;
    j.bounce_capacity = job.bounce_capacity;
    j.dst = job.dst;
    j.dst_capacity = job.dst_capacity;
    std::lock_guard<std::mutex> lock(mu_);
    if (!tickets_.has_room()) return uncollected_busy();
    int e = ops_->unpacker_submit(handle_, &j, ticket);
    if (e != 0)
      return cuda_status(ops_, e, "GPU " + std::to_string(gpu_) + " unpack slot " + std::to_string(job.slot));
    tickets_.issued(*ticket);
    return Status::Ok();
  }

  Status query(uint64_t ticket) override {
    int state = TCPX_CUDA_JOB_RUNNING;
    uint32_t bad = 0;
    std::lock_guard<std::mutex> lock(mu_);
    int e = ops_->unpacker_query(handle_, ticket, &state, &bad);
    if (e == 0 && state == TCPX_CUDA_JOB_RUNNING) return Status(StatusCode::kInProgress, "unpack running");
    tickets_.collected(ticket);  // final: its owner has seen it
    if (e != 0) return cuda_status(ops_, e, "GPU unpack ticket " + std::to_string(ticket));
    if (state == TCPX_CUDA_JOB_FAILED)
      return InvalidArgument("GPU unpack ticket " + std::to_string(ticket) +
                             " rejected entries:" + bad_flags_text(bad));
    return Status::Ok();
  }

  Status submit_copy(void* dst, const void* src, size_t n, uint64_t* ticket) override {
    if (ticket == nullptr) return InvalidArgument("copy submit: ticket is null");
    std::lock_guard<std::mutex> lock(mu_);
    if (!tickets_.has_room()) return uncollected_busy();
    int e = ops_->unpacker_submit_copy(handle_, dst, src, n, ticket);
    if (e != 0) return cuda_status(ops_, e, "GPU " + std::to_string(gpu_) + " copy of " + std::to_string(n) + " bytes");
    tickets_.issued(*ticket);
    return Status::Ok();
  }

  void release(uint64_t ticket) override {
    std::lock_guard<std::mutex> lock(mu_);
    tickets_.collected(ticket);
  }

  const char* name() const override { return "cuda"; }

 private:
  Status uncollected_busy() const {
    return Status(StatusCode::kBusy, "GPU " + std::to_string(gpu_) + " unpacker: " +
                                         std::to_string(tickets_.open_span()) +
                                         " tickets since the oldest one not yet collected by its owner");
  }

  const tcpxCudaOps_v1* ops_;
  void* handle_;
  int gpu_;
  std::mutex mu_;
  // The library reuses a finished job's record kMaxTicketsInFlight tickets
  // later: keep uncollected results from being overwritten (ticket_window.h).
  TicketWindow<kMaxTicketsInFlight> tickets_;
};
static_assert(Unpacker::kMaxTicketsInFlight == TCPX_CUDA_UNPACK_RING,
              "the ticket window must match libtcpx_cuda.so's ring of job records");

}  // namespace

Status make_cuda_unpacker(int gpu_idx, std::unique_ptr<Unpacker>* out) {
  if (out == nullptr) return InvalidArgument("make_cuda_unpacker: out is null");
  const tcpxCudaOps_v1* ops = tcpx::cuda::ops();
  if (ops == nullptr) return Unsupported(std::string("GPU unpack unavailable: ") + tcpx::cuda::unavailable_reason());
  int n = 0;
  if (ops->device_count(&n) != 0 || gpu_idx < 0 || gpu_idx >= n)
    return InvalidArgument("GPU index " + std::to_string(gpu_idx) + " out of range (" + std::to_string(n) +
                           " device(s))");
  void* handle = nullptr;
  int e = ops->unpacker_create(gpu_idx, &handle);
  if (e != 0) return cuda_status(ops, e, "creating the GPU " + std::to_string(gpu_idx) + " unpacker");
  *out = std::make_unique<CudaUnpacker>(ops, handle, gpu_idx);
  return Status::Ok();
}

}  // namespace tcpx::unpack
