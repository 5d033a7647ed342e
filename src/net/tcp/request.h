// What every request handed out by this plugin starts with, so test() can tell
// a send from a receive and refuse a pointer that is no longer a live request.
// Requests live in a fixed ring of 16 inside their comm: handing one out never
// allocates, and a freed one is recognisable (kFree) until the comm closes.
#ifndef TCPX_NET_TCP_REQUEST_H_
#define TCPX_NET_TCP_REQUEST_H_

#include <cstdint>

#include "net/nccl_net_v7.h"

namespace tcpx::tcp {

inline constexpr uint32_t kRequestMagic = 0x52455154;  // "REQT"
inline constexpr int kMaxRequests = 16;

enum class RequestKind : uint8_t { kSend, kRecv };
enum class RequestState : uint8_t { kFree, kActive, kDone, kFailed };

struct RequestHeader {
  uint32_t magic = kRequestMagic;
  RequestKind kind = RequestKind::kSend;
  RequestState state = RequestState::kFree;
  uint64_t seq = 0;  // index of the post on its comm, from 0
  ncclResult_t error = ncclSuccess;  // when kFailed
};

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_REQUEST_H_
