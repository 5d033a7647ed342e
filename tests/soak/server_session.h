// The server's side of one peer connection: answers the peer's requests
// (soak_ops.h) one at a time, doing its half of each transfer and checking
// every byte that lands here. Ends when the peer says goodbye (OK) or the
// connection fails (that status; the caller decides whether it was
// expected).
#ifndef TCPX_TESTS_SOAK_SERVER_SESSION_H_
#define TCPX_TESTS_SOAK_SERVER_SESSION_H_

#include <atomic>
#include <string>
#include <vector>

#include "notification_inbox.h"
#include "soak_ops.h"
#include "soak_stats.h"
#include "tcpx/endpoint.h"

namespace tcpx::soak {

// A wait longer than this for one step of an operation is a hang: every
// peer answers at once, and a dead or frozen one must be declared dead far
// sooner (TCPX_PEER_TIMEOUT_MS).
inline constexpr int kStepTimeoutMs = 30000;

class ServerSession {
 public:
  // `abandon` asks a session stuck waiting for a request to give up.
  ServerSession(Endpoint* ep, NotificationInbox* inbox, SoakStats* stats, ConnId conn,
                const std::atomic<bool>* abandon);
  ~ServerSession();
  Status run();
  // A data check failed here or at the peer (already counted as unexpected).
  bool data_failed() const { return data_failed_; }

 private:
  Status serve(const Op& op);
  Status receive(const Op& op);
  Status send(const Op& op);
  Status advertise_for_write(const Op& op);
  Status advertise_for_read(const Op& op);
  Status check_notification(const Op& op);
  // Advertises piece i of op at its offset in the region; hex FifoItems.
  Status advertise_pieces(const Op& op, std::string* reply);
  Status check_pieces(const Op& op, const char* what);
  Status next_request(std::string* line, int timeout_ms);
  Status reply(const std::string& line);
  Status data_mismatch(const std::string& detail);
  Status reregister();

  Endpoint* ep_;
  NotificationInbox* inbox_;
  SoakStats* stats_;
  ConnId conn_;
  const std::atomic<bool>* abandon_;
  std::vector<uint8_t> region_;
  MrId mr_ = 0;
  bool registered_ = false;
  bool data_failed_ = false;
};

}  // namespace tcpx::soak

#endif  // TCPX_TESTS_SOAK_SERVER_SESSION_H_
