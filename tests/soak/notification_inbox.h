// Endpoint::get_notifications() drains the whole endpoint's queue, but each
// connection's session wants only its own: the inbox drains into per-
// connection queues under a lock, so sessions on several threads share it.
#ifndef TCPX_TESTS_SOAK_NOTIFICATION_INBOX_H_
#define TCPX_TESTS_SOAK_NOTIFICATION_INBOX_H_

#include <deque>
#include <map>
#include <mutex>

#include "tcpx/endpoint.h"

namespace tcpx::soak {

class NotificationInbox {
 public:
  explicit NotificationInbox(Endpoint* ep) : ep_(ep) {}
  // The oldest notification from `conn`, waiting up to timeout_ms.
  // TIMED_OUT if none came.
  Status take(ConnId conn, Notification* out, int timeout_ms);
  // Drops what is left for a finished connection.
  void forget(ConnId conn);

 private:
  Endpoint* ep_;
  std::mutex mu_;
  std::map<ConnId, std::deque<Notification>> queues_;
};

}  // namespace tcpx::soak

#endif  // TCPX_TESTS_SOAK_NOTIFICATION_INBOX_H_
