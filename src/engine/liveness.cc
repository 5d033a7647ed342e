#include "engine/liveness.h"

#include <algorithm>

namespace tcpx::engine {

Liveness::Liveness(int peer_timeout_ms, Clock::time_point now)
    : timeout_(std::chrono::milliseconds(std::max(peer_timeout_ms, 1))), last_heard_(now) {}

void Liveness::heard(Clock::time_point now) {
  last_heard_ = now;
  ping_outstanding_ = false;
}

Liveness::Action Liveness::check(Clock::time_point now, bool busy) {
  if (ping_outstanding_) {
    if (now - last_heard_ >= timeout_ && now - ping_sent_ >= timeout_ / 2) return Action::kDead;
    return Action::kNone;
  }
  Clock::duration interval = busy ? timeout_ / 4 : timeout_;
  if (now - last_heard_ < interval) return Action::kNone;
  ping_outstanding_ = true;
  ping_sent_ = now;
  return Action::kPing;
}

Liveness::Clock::time_point Liveness::next_event(bool busy) const {
  if (ping_outstanding_) return std::max(last_heard_ + timeout_, ping_sent_ + timeout_ / 2);
  return last_heard_ + (busy ? timeout_ / 4 : timeout_);
}

std::chrono::milliseconds Liveness::silent_for(Clock::time_point now) const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - last_heard_);
}

}  // namespace tcpx::engine
