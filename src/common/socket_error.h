// The one place a failed socket call's errno becomes a Status, so that every
// socket path reports the same code for the same failure and says which call
// failed and why ("connect to 10.0.0.2:4000: Connection refused (errno 111)").
#ifndef TCPX_COMMON_SOCKET_ERROR_H_
#define TCPX_COMMON_SOCKET_ERROR_H_

#include <string>
#include <string_view>

#include "tcpx/status.h"

namespace tcpx {

// Whether the socket had a connection when the call failed: losing one is
// PEER_CLOSED, failing to make one (refused, unreachable) TRANSPORT_ERROR.
enum class SocketStage { kSetup, kConnected };

// `what` names the call and its object; err is the errno it left. On a
// connected socket, ECONNRESET, EPIPE, ENOTCONN, ESHUTDOWN, ECONNABORTED and
// ETIMEDOUT (keepalive, TCP_USER_TIMEOUT) and the unreachable family (a
// partition) are PEER_CLOSED; EBADF, EFAULT, EINVAL and ENOTSOCK are
// INTERNAL (a bug of ours, not the network's); the rest TRANSPORT_ERROR.
Status socket_error(std::string_view what, int err, SocketStage stage);

// "Connection refused (errno 111)".
std::string errno_text(int err);

}  // namespace tcpx

#endif  // TCPX_COMMON_SOCKET_ERROR_H_
