// Status: the one error type of the library. Every fallible call returns one;
// nothing on the data path throws, exits or aborts.
#ifndef TCPX_STATUS_H_
#define TCPX_STATUS_H_

#include <string>
#include <utility>

namespace tcpx {

enum class StatusCode : int {
  kOk = 0,
  kInProgress = 1,       // not finished yet; poll again
  kInvalidArgument = 2,  // the caller passed something wrong
  kTimedOut = 3,         // a deadline passed; the operation may still be live
  kPeerClosed = 4,       // the remote side went away (EOF, RST, killed)
  kProtocolError = 5,    // the peer sent something malformed or unexpected
  kTransportError = 6,   // the network plugin or a socket failed
  kNotFound = 7,         // unknown id (connection, MR, transfer)
  kUnsupported = 8,      // not available in this build or on this host
  kCudaError = 9,        // a CUDA call failed
  kBusy = 10,            // refused because the object is in use
  kInternal = 11,        // a bug in this library; please report it
};

// Short stable name of a code, e.g. "PEER_CLOSED".
const char* status_code_name(StatusCode code);

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  bool in_progress() const { return code_ == StatusCode::kInProgress; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "PEER_CLOSED: connection 3 to 10.0.0.2:4000 closed by peer".
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status TimedOut(std::string m) { return {StatusCode::kTimedOut, std::move(m)}; }
inline Status PeerClosed(std::string m) { return {StatusCode::kPeerClosed, std::move(m)}; }
inline Status ProtocolError(std::string m) { return {StatusCode::kProtocolError, std::move(m)}; }
inline Status TransportError(std::string m) { return {StatusCode::kTransportError, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status Busy(std::string m) { return {StatusCode::kBusy, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

}  // namespace tcpx

// Propagates a non-OK Status to the caller.
#define TCPX_RETURN_IF_ERROR(expr)              \
  do {                                          \
    ::tcpx::Status tcpx_status_ = (expr);       \
    if (!tcpx_status_.ok()) return tcpx_status_; \
  } while (0)

#endif  // TCPX_STATUS_H_
