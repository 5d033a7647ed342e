#include "uccl_metadata.h"

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>

namespace tcpx_py {

namespace {
constexpr size_t kV4Len = 4 + 2 + 4;
constexpr size_t kV6Len = 16 + 2 + 4;
}  // namespace

tcpx::Status encode_uccl_metadata(const tcpx::PeerInfo& info,
                                  std::string* out) {
  uint8_t addr[16];
  size_t addr_len = 0;
  if (inet_pton(AF_INET, info.ip.c_str(), addr) == 1) {
    addr_len = 4;
  } else if (inet_pton(AF_INET6, info.ip.c_str(), addr) == 1) {
    addr_len = 16;
  } else {
    return tcpx::InvalidArgument("not an IPv4 or IPv6 address: '" + info.ip +
                                 "'");
  }
  std::string blob(addr_len + 2 + 4, '\0');
  std::memcpy(blob.data(), addr, addr_len);
  uint16_t port_be = htons(info.port);
  std::memcpy(blob.data() + addr_len, &port_be, 2);
  int32_t gpu = info.gpu_idx;
  std::memcpy(blob.data() + addr_len + 2, &gpu, 4);
  *out = std::move(blob);
  return tcpx::Status::Ok();
}

tcpx::Status decode_uccl_metadata(const std::string& blob,
                                  tcpx::PeerInfo* out) {
  int family;
  size_t addr_len;
  if (blob.size() == kV4Len) {
    family = AF_INET;
    addr_len = 4;
  } else if (blob.size() == kV6Len) {
    family = AF_INET6;
    addr_len = 16;
  } else {
    return tcpx::InvalidArgument(
        "UCCL metadata is 10 (IPv4) or 22 (IPv6) bytes, got " +
        std::to_string(blob.size()));
  }
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(family, blob.data(), text, sizeof(text)) == nullptr) {
    return tcpx::InvalidArgument("unprintable address in metadata");
  }
  uint16_t port_be;
  std::memcpy(&port_be, blob.data() + addr_len, 2);
  int32_t gpu;
  std::memcpy(&gpu, blob.data() + addr_len + 2, 4);
  out->ip = text;
  out->port = ntohs(port_be);
  out->gpu_idx = gpu;
  return tcpx::Status::Ok();
}

tcpx::Status decode_any_metadata(const std::string& blob, tcpx::PeerInfo* out) {
  if (blob.size() == kV4Len || blob.size() == kV6Len) {
    return decode_uccl_metadata(blob, out);
  }
  return tcpx::Endpoint::parse_metadata(
      std::vector<uint8_t>(blob.begin(), blob.end()), out);
}

}  // namespace tcpx_py
