// ControlListener: the accept side. One thread accepts TCP control
// connections and drives every pending handshake as a non-blocking state
// machine (engine/accept_handshake.h) in the same poll loop, then hands
// finished connections to on_ready.
//
// What a peer can make it hold is bounded: at most max_pending handshakes
// at once (the excess is answered with a REJECT and closed at once), each
// one socket and at most a 4 KiB frame of buffer, and no plugin comm before
// its HELLO (and, with an auth key, its proof) is in; a peer that has not
// sent those within hello_timeout_ms is closed (slow-loris), and every
// handshake ends within timeout_ms.
#ifndef TCPX_ENGINE_LISTENER_H_
#define TCPX_ENGINE_LISTENER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/accept_handshake.h"

namespace tcpx::engine {

// The time a fresh connection gets to send its HELLO (and proof): an honest
// connector sends it right after connecting, so a few seconds are plenty even
// on a loaded host, and a slow-loris peer is cut off early.
inline constexpr int kHelloTimeoutMs = 3000;

struct ListenerLimits {
  int max_pending = 64;                   // Config::max_handshakes
  int hello_timeout_ms = kHelloTimeoutMs;  // capped by timeout_ms
  int timeout_ms = 10000;                 // Config::connect_timeout_ms
};

class ControlListener {
 public:
  using OnReady = std::function<void(HandshakeResult&&)>;
  ~ControlListener() { stop(); }
  // Binds addr:port (port 0 = ephemeral); port() is known after this.
  Status bind(const std::string& addr, uint16_t port);
  // Starts accepting; handshakes answer with params (which name our port).
  void run(const HandshakeParams& params, const ListenerLimits& limits, OnReady on_ready);
  uint16_t port() const { return port_; }
  // Stops the thread (within one poll slice, 50 ms) and drops every pending
  // handshake with its socket and plugin comms.
  void stop();
  Status last_error() const;

 private:
  void loop();
  void accept_new();
  // Answers a connection over the cap with a REJECT and closes it.
  void refuse(int fd);
  void record_failure(const std::string& peer, const Status& s);

  HandshakeParams params_;
  ListenerLimits limits_;
  OnReady on_ready_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // Owned by the listener thread.
  std::vector<std::unique_ptr<AcceptHandshake>> pending_;
  Clock::time_point accept_paused_until_{};  // after EMFILE and the like
  Clock::time_point last_warning_{};
  int warnings_suppressed_ = 0;

  mutable std::mutex mu_;
  Status last_error_;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_LISTENER_H_
