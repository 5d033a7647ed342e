// ControlListener: the accept side. A thread accepts TCP control connections
// and runs each handshake on its own short-lived thread (a slow or bad peer
// cannot hold up others; every handshake has the connect deadline), then
// hands finished connections to on_ready.
#ifndef TCPX_ENGINE_LISTENER_H_
#define TCPX_ENGINE_LISTENER_H_

#include <atomic>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include "engine/handshake.h"

namespace tcpx::engine {

class ControlListener {
 public:
  using OnReady = std::function<void(HandshakeResult&&)>;
  ~ControlListener() { stop(); }
  // Binds addr:port (port 0 = ephemeral); port() is known after this.
  Status bind(const std::string& addr, uint16_t port);
  // Starts accepting; handshakes answer with params (which name our port).
  void run(const HandshakeParams& params, int timeout_ms, OnReady on_ready);
  uint16_t port() const { return port_; }
  // Cancels running handshakes and joins every thread (bounded: handshakes
  // look at the cancel flag every few milliseconds).
  void stop();
  Status last_error() const;

 private:
  void accept_loop();
  void run_handshake(int fd);
  void reap(bool all);

  HandshakeParams params_;
  int timeout_ms_ = 10000;
  OnReady on_ready_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  struct Worker {
    std::thread t;
    std::atomic<bool> done{false};
  };
  std::list<Worker> workers_;
  Status last_error_;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_LISTENER_H_
