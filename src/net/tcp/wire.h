// What travels between two instances of this plugin.
//
// Connection: every socket of a comm starts with a 16-byte Hello (magic,
// version, the connector's socket count, this socket's index, a random nonce
// that groups the sockets of one comm), all integers big-endian.
//
// Data: each message is a 16-byte header on socket 0 (magic, reserved, size as
// a 64-bit big-endian integer) followed by the payload, which is cut into one
// contiguous piece per socket (see stripe()). Socket 0 carries the header and
// the first piece, socket i the i-th piece; small messages travel whole on
// socket 0 because splitting them costs more syscalls than it saves.
#ifndef TCPX_NET_TCP_WIRE_H_
#define TCPX_NET_TCP_WIRE_H_

#include <climits>
#include <cstddef>
#include <cstdint>

namespace tcpx::tcp {

inline constexpr uint32_t kHelloMagic = 0x54435048;  // "TCPH"
inline constexpr uint16_t kWireVersion = 1;
inline constexpr size_t kHelloBytes = 16;
inline constexpr uint32_t kMsgMagic = 0x5443504d;    // "TCPM"
inline constexpr size_t kMsgHeaderBytes = 16;
// Messages below this size are not striped.
inline constexpr uint64_t kStripeMinBytes = 256 * 1024;

inline void put_be32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i) { p[i] = static_cast<uint8_t>(v); v >>= 8; }
}
inline void put_be64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) { p[i] = static_cast<uint8_t>(v); v >>= 8; }
}
inline uint32_t get_be32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t get_be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

struct Hello {
  int nsocks = 0;
  int index = 0;
  uint64_t nonce = 0;
};

inline void encode_hello(const Hello& h, uint8_t out[kHelloBytes]) {
  put_be32(out, kHelloMagic);
  out[4] = static_cast<uint8_t>(kWireVersion >> 8);
  out[5] = static_cast<uint8_t>(kWireVersion);
  out[6] = static_cast<uint8_t>(h.nsocks);
  out[7] = static_cast<uint8_t>(h.index);
  put_be64(out + 8, h.nonce);
}

// False for anything that is not a hello this version understands.
inline bool decode_hello(const uint8_t in[kHelloBytes], int max_socks, Hello* out) {
  if (get_be32(in) != kHelloMagic) return false;
  if (((in[4] << 8) | in[5]) != kWireVersion) return false;
  Hello h;
  h.nsocks = in[6];
  h.index = in[7];
  h.nonce = get_be64(in + 8);
  if (h.nsocks < 1 || h.nsocks > max_socks || h.index >= h.nsocks) return false;
  *out = h;
  return true;
}

inline void encode_msg_header(uint64_t size, uint8_t out[kMsgHeaderBytes]) {
  put_be32(out, kMsgMagic);
  put_be32(out + 4, 0);
  put_be64(out + 8, size);
}

// False for a bad magic or a size no v7 call could have sent.
inline bool decode_msg_header(const uint8_t in[kMsgHeaderBytes], uint64_t* size) {
  if (get_be32(in) != kMsgMagic || get_be32(in + 4) != 0) return false;
  uint64_t s = get_be64(in + 8);
  if (s > static_cast<uint64_t>(INT_MAX)) return false;
  *size = s;
  return true;
}

struct Piece {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t size() const { return end - begin; }
};

// The part of a `size`-byte payload that socket `s` of `nsocks` carries. Both
// ends compute it, so it must never change within a wire version.
inline Piece stripe(uint64_t size, int nsocks, int s) {
  if (nsocks <= 1 || size < kStripeMinBytes) return s == 0 ? Piece{0, size} : Piece{size, size};
  constexpr uint64_t kAlign = 4096;
  uint64_t per = (size + nsocks - 1) / nsocks;
  per = (per + kAlign - 1) / kAlign * kAlign;
  uint64_t b = per * static_cast<uint64_t>(s);
  uint64_t e = b + per;
  if (b > size) b = size;
  if (e > size) e = size;
  return Piece{b, e};
}

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_WIRE_H_
