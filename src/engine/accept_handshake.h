// AcceptHandshake: the accepting side of the handshake (engine/handshake.h)
// as a non-blocking state machine, so the listener's one thread drives every
// pending handshake and a silent, slow or garbage-sending peer costs one
// socket and at most a handshake frame's worth of buffer (4 KiB), never a
// thread or a plugin comm.
//
// Stages: HELLO -> [AUTH_PROOF] -> plugin channels up -> READY. Until the
// HELLO (and, with an auth key, the peer's proof) has arrived the connection
// lives under the short hello deadline; the whole handshake under the
// connect deadline.
#ifndef TCPX_ENGINE_ACCEPT_HANDSHAKE_H_
#define TCPX_ENGINE_ACCEPT_HANDSHAKE_H_

#include <memory>
#include <string>
#include <vector>

#include "engine/auth.h"
#include "engine/handshake.h"

namespace tcpx::engine {

class AcceptHandshake {
 public:
  // Takes ownership of fd (an accepted TCP connection). `p` must outlive
  // this. The HELLO (and proof) must arrive within hello_timeout_ms, the
  // whole handshake finish within timeout_ms, both counted from now.
  AcceptHandshake(const HandshakeParams& p, int fd, int hello_timeout_ms, int timeout_ms);

  int fd() const { return control_->fd(); }
  // "ip:port" of the peer, for messages.
  const std::string& peer_address() const { return peer_address_; }
  // The poll() events this handshake waits for.
  short events() const;
  // While plugin channels come up, step() must run without waiting for the
  // socket: the plugin's connect/accept steps have no fd to poll.
  bool wants_steps() const { return stage_ == Stage::kChannels; }
  // The deadline that applies in the current stage.
  Clock::time_point deadline() const;

  // Advances as far as it can without blocking. IN_PROGRESS while under way
  // (*stepped: something moved), OK when complete (then take_result()),
  // else why it failed; the peer was sent a REJECT where that helps.
  Status step(bool* stepped);
  HandshakeResult take_result();

 private:
  enum class Stage { kHello, kProof, kChannels, kReady, kDone };
  Status advance(bool* stepped);
  Status on_frame(const Frame& f);
  Status on_hello(const Frame& f);
  Status on_proof(const Frame& f);
  // GPU and channel checks, then our listen comms and the HELLO_REPLY.
  Status start_channels();
  Status timed_out();
  // Queues a REJECT with the reason, writes what the socket takes now and
  // returns s.
  Status reject(const Status& s);

  const HandshakeParams& p_;
  std::unique_ptr<ControlChannel> control_;
  std::string peer_address_;
  int hello_timeout_ms_;
  Clock::time_point hello_deadline_, deadline_;
  Stage stage_ = Stage::kHello;
  HelloPayload hello_;
  std::vector<uint8_t> hello_bytes_;  // what the proofs cover
  auth::Nonce nonce_{};               // ours, in the AUTH_CHALLENGE
  std::unique_ptr<ChannelBringUp> bring_up_;
  bool peer_ready_ = false;  // the peer's READY came while our channels were still coming up
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_ACCEPT_HANDSHAKE_H_
