#include "control.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda/cuda_ops.h"

namespace tcpx::bench {

std::string to_hex(const FifoItem& f) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t b : f.bytes) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

bool from_hex(const std::string& s, FifoItem* f) {
  if (s.size() != 2 * sizeof(f->bytes)) return false;
  for (size_t i = 0; i < sizeof(f->bytes); ++i)
    f->bytes[i] = static_cast<uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return true;
}

Status send_text(Endpoint& ep, ConnId c, const std::string& s) { return ep.send_message(c, s.data(), s.size()); }

Status recv_text(Endpoint& ep, ConnId c, std::string* s, int timeout_ms) {
  std::vector<uint8_t> m;
  Status st = ep.recv_message(c, &m, timeout_ms);
  if (st.ok()) s->assign(m.begin(), m.end());
  return st;
}

namespace {

const tcpxCudaOps_v1* cuda_ops_or(Status* why) {
  const tcpxCudaOps_v1* ops = tcpx::cuda::ops();
  if (ops == nullptr) *why = Unsupported(std::string("--mem cuda: ") + tcpx::cuda::unavailable_reason());
  else if (ops->device_alloc == nullptr || ops->device_free == nullptr)
    *why = Unsupported("--mem cuda: this CUDA library cannot allocate device memory");
  return ops;
}

Status cuda_error(const tcpxCudaOps_v1* ops, const char* what, int e) {
  return Status(StatusCode::kCudaError, std::string(what) + ": " + ops->error_string(e));
}

}  // namespace

Status Buffer::init(Endpoint& ep, size_t n, bool cuda, int gpu) {
  ep_ = &ep;
  size_ = n;
  cuda_ = cuda;
  const size_t rounded = (n + 4095) / 4096 * 4096;
  if (cuda_) {
    Status why;
    const tcpxCudaOps_v1* ops = cuda_ops_or(&why);
    TCPX_RETURN_IF_ERROR(why);
    // cudaMalloc promises 256-byte alignment; CUDA registrations need 4096.
    if (int e = ops->device_alloc(gpu, rounded + 4096, &device_alloc_); e != 0)
      return cuda_error(ops, "device_alloc", e);
    data_ = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(device_alloc_) + 4095) & ~uintptr_t{4095});
    mirror_.assign(n, 0);
    TCPX_RETURN_IF_ERROR(to_device(0, n));
  } else {
    data_ = static_cast<uint8_t*>(std::aligned_alloc(4096, rounded));
    if (data_ == nullptr) return Internal("out of memory");
    std::memset(data_, 0, n);
  }
  TCPX_RETURN_IF_ERROR(ep.reg(data_, n, &mr_));
  registered_ = true;
  return Status::Ok();
}

Status Buffer::fill(size_t at, size_t n) {
  uint8_t* p = cuda_ ? mirror_.data() : data_;
  for (size_t j = 0; j < n; ++j) p[at + j] = pattern(n, j);
  return cuda_ ? to_device(at, n) : Status::Ok();
}

Status Buffer::zero(size_t n) {
  std::memset(cuda_ ? mirror_.data() : data_, 0, n);
  return cuda_ ? to_device(0, n) : Status::Ok();
}

Status Buffer::expect_pattern(size_t at, size_t n, const std::string& what) {
  if (cuda_) TCPX_RETURN_IF_ERROR(from_device(at, n));
  const uint8_t* p = cuda_ ? mirror_.data() : data_;
  for (size_t j = 0; j < n; ++j)
    if (p[at + j] != pattern(n, j)) return Internal(what + " differs at byte " + std::to_string(j));
  return Status::Ok();
}

Status Buffer::to_device(size_t at, size_t n) {
  const tcpxCudaOps_v1* ops = tcpx::cuda::ops();
  int e = ops->memcpy_h2d(data_ + at, mirror_.data() + at, n);
  return e == 0 ? Status::Ok() : cuda_error(ops, "memcpy_h2d", e);
}

Status Buffer::from_device(size_t at, size_t n) {
  const tcpxCudaOps_v1* ops = tcpx::cuda::ops();
  int e = ops->memcpy_d2h(mirror_.data() + at, data_ + at, n);
  return e == 0 ? Status::Ok() : cuda_error(ops, "memcpy_d2h", e);
}

Buffer::~Buffer() {
  if (registered_) (void)ep_->dereg(mr_);  // nothing to report it to; the memory goes either way
  if (device_alloc_ != nullptr) tcpx::cuda::ops()->device_free(device_alloc_);
  else std::free(data_);
}

}  // namespace tcpx::bench
