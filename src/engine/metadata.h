// Out-of-band endpoint metadata: the versioned binary blob and the C API's
// "ip:port?gpu" string. Ports are network byte order in the blob.
#ifndef TCPX_ENGINE_METADATA_H_
#define TCPX_ENGINE_METADATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tcpx/endpoint.h"

namespace tcpx::engine {

inline constexpr uint32_t kMetadataMagic = 0x5443584d;  // "TCXM"
inline constexpr uint8_t kMetadataVersion = 1;

Status encode_metadata(const PeerInfo& info, std::vector<uint8_t>* out);
Status decode_metadata(const std::vector<uint8_t>& blob, PeerInfo* out);
std::string format_metadata_string(const PeerInfo& info);
Status parse_metadata_string(const std::string& s, PeerInfo* out);

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_METADATA_H_
