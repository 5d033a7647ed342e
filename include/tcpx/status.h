// Status: the one error type of the library. Every fallible call returns one;
// nothing on the data path throws, exits or aborts.
#ifndef TCPX_STATUS_H_
#define TCPX_STATUS_H_

#include <cstdint>
#include <string>
#include <utility>

namespace tcpx {

// The numbers are part of the wire protocol (REJECT, WRITE_ACK, the C API's
// rejected FIFO items, uccl_p2p's GRANT_REPLY carry them) and of the Python
// errors module: never renumber, only append. The static_asserts below pin
// them.
enum class StatusCode : int {
  kOk = 0,
  kInProgress = 1,       // not finished yet; poll again
  kInvalidArgument = 2,  // the caller passed something wrong
  kTimedOut = 3,         // a deadline passed; the operation may still be live
  kPeerClosed = 4,       // the remote side went away (EOF, RST, killed, stopped responding)
  kProtocolError = 5,    // the peer sent something malformed or unexpected
  kTransportError = 6,   // the network plugin or a socket failed
  kNotFound = 7,         // unknown id (connection, MR, transfer)
  kUnsupported = 8,      // not available in this build or on this host
  kCudaError = 9,        // a CUDA call failed
  kBusy = 10,            // refused because the object is in use
  kInternal = 11,        // a bug in this library; please report it
  kRejected = 12,        // the peer refused the request (the message says why)
  kClosed = 13,          // this side closed the connection or destroyed the object
  kCancelled = 14,       // cancelled by this side's cancel() call
};

// The largest code; a number from the network above it is not a StatusCode.
inline constexpr StatusCode kLastStatusCode = StatusCode::kCancelled;

static_assert(static_cast<int>(StatusCode::kOk) == 0 && static_cast<int>(StatusCode::kInProgress) == 1 &&
                  static_cast<int>(StatusCode::kInvalidArgument) == 2 && static_cast<int>(StatusCode::kTimedOut) == 3 &&
                  static_cast<int>(StatusCode::kPeerClosed) == 4 && static_cast<int>(StatusCode::kProtocolError) == 5 &&
                  static_cast<int>(StatusCode::kTransportError) == 6 && static_cast<int>(StatusCode::kNotFound) == 7 &&
                  static_cast<int>(StatusCode::kUnsupported) == 8 && static_cast<int>(StatusCode::kCudaError) == 9 &&
                  static_cast<int>(StatusCode::kBusy) == 10 && static_cast<int>(StatusCode::kInternal) == 11 &&
                  static_cast<int>(StatusCode::kRejected) == 12 && static_cast<int>(StatusCode::kClosed) == 13 &&
                  static_cast<int>(StatusCode::kCancelled) == 14,
              "StatusCode numbers travel on the wire: append, never renumber");
static_assert(kLastStatusCode == StatusCode::kCancelled, "kLastStatusCode must name the last code");

// Whether a number received from a peer is a StatusCode.
constexpr bool is_status_code(uint32_t v) { return v <= static_cast<uint32_t>(kLastStatusCode); }

// Short stable name of a code, e.g. "PEER_CLOSED".
const char* status_code_name(StatusCode code);

// [[nodiscard]]: an ignored Status is an ignored error. Where dropping one
// is right, say so with (void) and a comment.
class [[nodiscard]] Status {
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
inline Status Rejected(std::string m) { return {StatusCode::kRejected, std::move(m)}; }
inline Status Closed(std::string m) { return {StatusCode::kClosed, std::move(m)}; }
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

}  // namespace tcpx

// Propagates a non-OK Status to the caller.
#define TCPX_RETURN_IF_ERROR(expr)              \
  do {                                          \
    ::tcpx::Status tcpx_status_ = (expr);       \
    if (!tcpx_status_.ok()) return tcpx_status_; \
  } while (0)

#endif  // TCPX_STATUS_H_
