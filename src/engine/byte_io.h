// ByteWriter / ByteReader: big-endian (network order) serialisation with
// bounds checks, so no struct is ever copied raw onto the wire and a short or
// hostile buffer is an error value, never an out-of-bounds read.
#ifndef TCPX_ENGINE_BYTE_IO_H_
#define TCPX_ENGINE_BYTE_IO_H_

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace tcpx::engine {

// A payload of at most N bytes kept in place: the fixed-size frames of the
// transfer path (CTS, SEND_ANNOUNCE, DATA, WRITE_REQ, READ_REQ) are built on
// the stack, not in a heap vector per transfer. Writing past N is a bug in
// the encoder (the sizes are fixed by the wire format), so it asserts.
template <size_t N>
class FixedBytes {
 public:
  void push_back(uint8_t v) {
    assert(n_ < N);
    b_[n_++] = v;
  }
  void append(const uint8_t* p, size_t n) {
    assert(n <= N - n_);
    if (n > 0) std::memcpy(b_.data() + n_, p, n);
    n_ += n;
  }
  const uint8_t* data() const { return b_.data(); }
  size_t size() const { return n_; }
  operator std::span<const uint8_t>() const { return {b_.data(), n_}; }
  // For callers that keep the bytes (tests, fuzz seeds).
  operator std::vector<uint8_t>() const { return {b_.data(), b_.data() + n_}; }

 private:
  std::array<uint8_t, N> b_{};
  size_t n_ = 0;
};

// Out is a std::vector<uint8_t> or a FixedBytes.
template <class Out>
class ByteWriter {
 public:
  explicit ByteWriter(Out* out) : out_(out) {}
  void u8(uint8_t v) { out_->push_back(v); }
  void u16(uint16_t v) { be(v, 2); }
  void u32(uint32_t v) { be(v, 4); }
  void u64(uint64_t v) { be(v, 8); }
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    if constexpr (requires { out_->append(b, n); }) out_->append(b, n);
    else out_->insert(out_->end(), b, b + n);
  }
  // Length-prefixed (u32) string.
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }

 private:
  void be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_->push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  Out* out_;
};

// Every getter returns false (and leaves the reader failed) when the buffer
// is too short; callers check ok() once at the end or each result.
class ByteReader {
 public:
  ByteReader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool u8(uint8_t* v) { uint64_t t; if (!be(&t, 1)) return false; *v = static_cast<uint8_t>(t); return true; }
  bool u16(uint16_t* v) { uint64_t t; if (!be(&t, 2)) return false; *v = static_cast<uint16_t>(t); return true; }
  bool u32(uint32_t* v) { uint64_t t; if (!be(&t, 4)) return false; *v = static_cast<uint32_t>(t); return true; }
  bool u64(uint64_t* v) { return be(v, 8); }
  bool bytes(void* dst, size_t n) {
    if (!ok_ || n > n_ - pos_) return ok_ = false;
    std::memcpy(dst, p_ + pos_, n);
    pos_ += n;
    return true;
  }
  bool str(std::string* s, size_t max_len) {
    uint32_t len = 0;
    if (!u32(&len) || len > max_len || len > n_ - pos_) return ok_ = false;
    s->assign(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return true;
  }
  bool ok() const { return ok_; }
  size_t remaining() const { return n_ - pos_; }
  const uint8_t* cursor() const { return p_ + pos_; }

 private:
  bool be(uint64_t* v, size_t n) {
    if (!ok_ || n > n_ - pos_) return ok_ = false;
    uint64_t r = 0;
    for (size_t i = 0; i < n; ++i) r = (r << 8) | p_[pos_ + i];
    pos_ += n;
    *v = r;
    return true;
  }
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_BYTE_IO_H_
