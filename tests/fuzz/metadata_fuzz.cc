// Endpoint metadata from out of band (engine/metadata.h): the binary blob
// (decode_metadata) and the C API's "ip:port?gpu" string
// (parse_metadata_string).
//
// Input: u8 selector (even: blob, odd: string), then the blob or the text.
// Invariants: errors are INVALID_ARGUMENT; an accepted blob re-encodes to the
// same bytes; an accepted string has an address, a gpu index >= -1, and its
// canonical form parses back to the same PeerInfo.
#include <string>

#include "engine/metadata.h"
#include "fuzz_check.h"

using namespace tcpx;
using namespace tcpx::engine;
using tcpx::fuzz::Bytes;

namespace {

bool same_peer(const PeerInfo& a, const PeerInfo& b) {
  return a.ip == b.ip && a.port == b.port && a.gpu_idx == b.gpu_idx;
}

void blob(const Bytes& b) {
  PeerInfo p;
  Status s = decode_metadata(b, &p);
  FUZZ_EXPECT_CODE(s, StatusCode::kInvalidArgument);
  if (!s.ok()) return;
  FUZZ_CHECK(!p.ip.empty());
  Bytes again;
  FUZZ_CHECK(encode_metadata(p, &again).ok());
  FUZZ_CHECK(again == b);
}

void text(const std::string& t) {
  PeerInfo p;
  Status s = parse_metadata_string(t, &p);
  FUZZ_EXPECT_CODE(s, StatusCode::kInvalidArgument);
  if (!s.ok()) return;
  FUZZ_CHECK(!p.ip.empty() && p.gpu_idx >= -1);
  PeerInfo again;
  FUZZ_CHECK(parse_metadata_string(format_metadata_string(p), &again).ok());
  FUZZ_CHECK(same_peer(again, p));
  // The blob form carries the same peer.
  Bytes b;
  PeerInfo from_blob;
  FUZZ_CHECK(encode_metadata(p, &b).ok());
  FUZZ_CHECK(decode_metadata(b, &from_blob).ok());
  FUZZ_CHECK(from_blob.port == p.port && from_blob.gpu_idx == p.gpu_idx);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tcpx::fuzz::InputCursor in(data, size);
  const bool as_text = in.u8() & 1;
  const Bytes b = in.rest();
  if (as_text) text(std::string(b.begin(), b.end()));
  else blob(b);
  return 0;
}
