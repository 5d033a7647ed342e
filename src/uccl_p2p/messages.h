// The two messages this layer sends on a connection's application channel
// (tcpx::Endpoint::send_message), to turn FifoItems into advertisements:
//
//   GRANT_REQUEST  initiator -> target: "serve these ranges for transfer R",
//                  each range as the FifoItem fields the target must check;
//   GRANT_REPLY    target -> initiator: the target's own Endpoint
//                  advertisement (tcpx::FifoItem) per range, or a refusal
//                  with the index of the first bad range and why.
//
// A vector is split into batches of at most kMaxBatch ranges so that every
// message stays under the endpoint's 1 MiB limit. Integers in network byte
// order; every decode checks lengths and counts before reading.
#ifndef TCPX_UCCL_P2P_MESSAGES_H_
#define TCPX_UCCL_P2P_MESSAGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tcpx/endpoint.h"
#include "uccl_p2p/grant_table.h"

namespace tcpx::uccl_p2p {

constexpr uint32_t kMaxBatch = 8192;  // 8192 * 64-byte replies = 512 KiB

enum class MessageType : uint8_t { kGrantRequest = 1, kGrantReply = 2 };

struct GrantRequest {
  uint64_t request_id = 0;  // the initiator's transfer id
  uint32_t first = 0;       // index of refs[0] in the transfer
  std::vector<GrantRef> refs;
};

struct GrantReply {
  uint64_t request_id = 0;
  uint32_t first = 0;
  StatusCode code = StatusCode::kOk;  // kOk: items holds one per ref
  uint32_t bad_index = 0;             // otherwise: which ref was refused
  std::string reason;
  std::vector<tcpx::FifoItem> items;  // the target's advertisements
};

std::vector<uint8_t> encode(const GrantRequest& m);
std::vector<uint8_t> encode(const GrantReply& m);
// The type of a received message, or an error if it is not one of ours.
Status peek_type(const std::vector<uint8_t>& bytes, MessageType* out);
Status decode(const std::vector<uint8_t>& bytes, GrantRequest* out);
Status decode(const std::vector<uint8_t>& bytes, GrantReply* out);

}  // namespace tcpx::uccl_p2p

#endif  // TCPX_UCCL_P2P_MESSAGES_H_
