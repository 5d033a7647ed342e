#include "engine/metadata.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "engine/byte_io.h"

namespace tcpx::engine {
namespace {

// Blob layout (all integers big-endian):
//   u32 magic | u8 version | u8 family (4 or 6) | 4 or 16 address bytes |
//   u16 port | i32 gpu index
constexpr uint8_t kFamily4 = 4;
constexpr uint8_t kFamily6 = 6;

}  // namespace

Status encode_metadata(const PeerInfo& info, std::vector<uint8_t>* out) {
  uint8_t addr[16];
  uint8_t family = 0;
  if (inet_pton(AF_INET, info.ip.c_str(), addr) == 1) family = kFamily4;
  else if (inet_pton(AF_INET6, info.ip.c_str(), addr) == 1) family = kFamily6;
  else return InvalidArgument("metadata: '" + info.ip + "' is not an IPv4 or IPv6 address");
  out->clear();
  ByteWriter w(out);
  w.u32(kMetadataMagic);
  w.u8(kMetadataVersion);
  w.u8(family);
  w.bytes(addr, family == kFamily4 ? 4 : 16);
  w.u16(info.port);
  w.u32(static_cast<uint32_t>(info.gpu_idx));
  return Status::Ok();
}

Status decode_metadata(const std::vector<uint8_t>& blob, PeerInfo* out) {
  if (out == nullptr) return InvalidArgument("parse_metadata: out is null");
  ByteReader r(blob.data(), blob.size());
  uint32_t magic = 0;
  uint8_t version = 0, family = 0;
  if (!r.u32(&magic) || magic != kMetadataMagic)
    return InvalidArgument("metadata: bad magic (not an endpoint metadata blob)");
  if (!r.u8(&version) || version != kMetadataVersion)
    return InvalidArgument("metadata: unsupported version " + std::to_string(version));
  if (!r.u8(&family) || (family != kFamily4 && family != kFamily6))
    return InvalidArgument("metadata: bad address family " + std::to_string(family));
  size_t alen = family == kFamily4 ? 4 : 16;
  uint8_t addr[16];
  uint16_t port = 0;
  uint32_t gpu = 0;
  if (!r.bytes(addr, alen) || !r.u16(&port) || !r.u32(&gpu))
    return InvalidArgument("metadata: truncated blob (" + std::to_string(blob.size()) + " bytes)");
  if (r.remaining() != 0)
    return InvalidArgument("metadata: " + std::to_string(r.remaining()) + " trailing bytes");
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(family == kFamily4 ? AF_INET : AF_INET6, addr, text, sizeof text) == nullptr)
    return InvalidArgument("metadata: unprintable address");
  out->ip = text;
  out->port = port;
  out->gpu_idx = static_cast<int32_t>(gpu);
  return Status::Ok();
}

std::string format_metadata_string(const PeerInfo& info) {
  bool v6 = info.ip.find(':') != std::string::npos;
  std::string host = v6 ? "[" + info.ip + "]" : info.ip;
  return host + ":" + std::to_string(info.port) + "?" + std::to_string(info.gpu_idx);
}

Status parse_metadata_string(const std::string& s, PeerInfo* out) {
  if (out == nullptr) return InvalidArgument("parse_metadata_string: out is null");
  auto bad = [&](const char* why) {
    return InvalidArgument("metadata string '" + s + "': " + why + " (expected ip:port?gpu or [ipv6]:port?gpu)");
  };
  std::string host;
  size_t rest = 0;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) return bad("missing ']'");
    host = s.substr(1, close - 1);
    rest = close + 1;
    if (rest >= s.size() || s[rest] != ':') return bad("missing ':' after ']'");
  } else {
    rest = s.find(':');
    if (rest == std::string::npos) return bad("missing ':'");
    host = s.substr(0, rest);
  }
  size_t q = s.find('?', rest);
  if (q == std::string::npos) return bad("missing '?'");
  std::string port_s = s.substr(rest + 1, q - rest - 1);
  std::string gpu_s = s.substr(q + 1);
  uint8_t addr[16];
  if (inet_pton(AF_INET, host.c_str(), addr) != 1 && inet_pton(AF_INET6, host.c_str(), addr) != 1)
    return bad("bad address");
  auto num = [](const std::string& t, long lo, long hi, long* v) {
    if (t.empty()) return false;
    errno = 0;
    char* end = nullptr;
    *v = std::strtol(t.c_str(), &end, 10);
    return *end == '\0' && errno == 0 && *v >= lo && *v <= hi;
  };
  long port = 0, gpu = 0;
  if (!num(port_s, 0, 65535, &port)) return bad("bad port");
  if (!num(gpu_s, -1, 1 << 20, &gpu)) return bad("bad gpu index");
  out->ip = host;
  out->port = static_cast<uint16_t>(port);
  out->gpu_idx = static_cast<int>(gpu);
  return Status::Ok();
}

}  // namespace tcpx::engine
