#include "tcpx/status.h"

namespace tcpx {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInProgress: return "IN_PROGRESS";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kTimedOut: return "TIMED_OUT";
    case StatusCode::kPeerClosed: return "PEER_CLOSED";
    case StatusCode::kProtocolError: return "PROTOCOL_ERROR";
    case StatusCode::kTransportError: return "TRANSPORT_ERROR";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kUnsupported: return "UNSUPPORTED";
    case StatusCode::kCudaError: return "CUDA_ERROR";
    case StatusCode::kBusy: return "BUSY";
    case StatusCode::kInternal: return "INTERNAL";
    case StatusCode::kRejected: return "REJECTED";
    case StatusCode::kClosed: return "CLOSED";
    case StatusCode::kCancelled: return "CANCELLED";
  }
  return "UNKNOWN";
}

std::string Status::to_string() const {
  if (message_.empty()) return status_code_name(code_);
  return std::string(status_code_name(code_)) + ": " + message_;
}

}  // namespace tcpx
