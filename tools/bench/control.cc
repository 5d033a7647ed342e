#include "control.h"

#include <cstdlib>
#include <cstring>
#include <vector>

namespace tcpx::bench {

void fill(uint8_t* p, size_t n) {
  for (size_t j = 0; j < n; ++j) p[j] = pattern(n, j);
}

bool verify(const uint8_t* p, size_t n, size_t first) {
  for (size_t j = first; j < n; ++j)
    if (p[j] != pattern(n, j)) return false;
  return true;
}

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

Status Buffer::init(Endpoint& ep, size_t n) {
  size = n;
  data = static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096));
  if (data == nullptr) return Internal("out of memory");
  std::memset(data, 0, n);
  return ep.reg(data, n, &mr);
}

Buffer::~Buffer() { std::free(data); }

}  // namespace tcpx::bench
