#include "common/socket_error.h"

#include <cerrno>
#include <cstring>

namespace tcpx {

std::string errno_text(int err) { return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")"; }

Status socket_error(std::string_view what, int err, SocketStage stage) {
  std::string message = std::string(what) + ": " + errno_text(err);
  switch (err) {
    case EBADF:
    case EFAULT:
    case EINVAL:
    case ENOTSOCK:
      return Internal(std::move(message));
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
    case ESHUTDOWN:
    case ECONNABORTED:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
      if (stage == SocketStage::kConnected) return PeerClosed(std::move(message));
      return TransportError(std::move(message));
    default:
      return TransportError(std::move(message));
  }
}

}  // namespace tcpx
