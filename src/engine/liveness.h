// Liveness: the application-level heartbeat of one control connection.
//
// A peer whose process is frozen (SIGSTOP, a debugger, a livelocked progress
// thread) keeps its kernel acknowledging TCP, so neither EOF nor keepalive
// nor TCP_USER_TIMEOUT ever fires; and the plugin does not report a dead
// peer either (TCPX's requests from a dead peer never finish). So the engine
// asks its peer's progress thread directly: when nothing has been heard on
// the control connection for a while it sends PING, which the peer's
// progress thread answers with PONG. Anything received counts as a sign of
// life, so a busy connection rarely pings.
//
// Rule (T = peer_timeout_ms): ping after T/4 of silence while the connection
// has work outstanding, after T while it is idle; the peer is dead once
// nothing has been heard for T and a ping has gone unanswered for at least
// T/2 (so a connection that turns busy after a long idle spell gives a live
// peer time to answer). Detection takes T while busy, about 1.5 T while idle.
//
// Pure bookkeeping (no I/O, no clock of its own): the progress loop feeds it
// the time and does what check() says.
#ifndef TCPX_ENGINE_LIVENESS_H_
#define TCPX_ENGINE_LIVENESS_H_

#include <chrono>

namespace tcpx::engine {

class Liveness {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Action { kNone, kPing, kDead };

  Liveness() : Liveness(5000, Clock::now()) {}
  Liveness(int peer_timeout_ms, Clock::time_point now);
  // Bytes arrived from the peer.
  void heard(Clock::time_point now);
  // What to do now. kPing means the caller sends a PING (recorded as sent).
  Action check(Clock::time_point now, bool busy);
  // The earliest time check() may return something other than kNone.
  Clock::time_point next_event(bool busy) const;
  // How long the peer has been silent (for the error message).
  std::chrono::milliseconds silent_for(Clock::time_point now) const;

 private:
  Clock::duration timeout_;
  Clock::time_point last_heard_;
  bool ping_outstanding_ = false;
  Clock::time_point ping_sent_;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_LIVENESS_H_
