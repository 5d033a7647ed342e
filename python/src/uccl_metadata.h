// UCCL's endpoint metadata layout (what uccl.p2p's get_metadata returns and
// parse_metadata reads): the address (4 bytes IPv4 or 16 bytes IPv6), the
// port as u16 big-endian, the GPU index as int32 in host byte order (UCCL
// copies the int as is). 10 or 22 bytes; the length tells the family.
// The C++ Endpoint's own metadata is a different, versioned blob.
#ifndef TCPX_PY_UCCL_METADATA_H_
#define TCPX_PY_UCCL_METADATA_H_

#include <string>

#include "tcpx/endpoint.h"
#include "tcpx/status.h"

namespace tcpx_py {

tcpx::Status encode_uccl_metadata(const tcpx::PeerInfo& info, std::string* out);
tcpx::Status decode_uccl_metadata(const std::string& blob, tcpx::PeerInfo* out);
// Either layout: UCCL's (10 or 22 bytes) or the C++ Endpoint's own.
tcpx::Status decode_any_metadata(const std::string& blob, tcpx::PeerInfo* out);

}  // namespace tcpx_py

#endif  // TCPX_PY_UCCL_METADATA_H_
