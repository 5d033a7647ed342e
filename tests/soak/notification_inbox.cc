#include "notification_inbox.h"

#include <chrono>
#include <thread>

namespace tcpx::soak {

Status NotificationInbox::take(ConnId conn, Notification* out, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto& n : ep_->get_notifications()) queues_[n.conn].push_back(std::move(n));
      auto& q = queues_[conn];
      if (!q.empty()) {
        *out = std::move(q.front());
        q.pop_front();
        return Status::Ok();
      }
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return TimedOut("no notification on connection " + std::to_string(conn));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void NotificationInbox::forget(ConnId conn) {
  std::lock_guard<std::mutex> l(mu_);
  queues_.erase(conn);
}

}  // namespace tcpx::soak
