// Config: every tunable of an Endpoint in one place, each with a default and
// an environment-variable override read by Config::from_env().
#ifndef TCPX_CONFIG_H_
#define TCPX_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "tcpx/status.h"

namespace tcpx {

struct Config {
  // Plugin comms (channels) per direction per peer.   TCPX_CHANNELS
  int channels_per_peer = 2;
  // Sockets inside each comm of the built-in plugin, passed with each
  // connect (its connectWithSockets extension). Google's plugin reads its own
  // variables (see docs/a3.md); a value other than 1 is then reported as
  // ignored.                                           TCPX_SOCKETS_PER_CHANNEL
  int sockets_per_channel = 1;
  // Largest piece of a transfer handed to one isend/irecv (<= 4 MiB, the
  // TCPX bounce-buffer limit).                         TCPX_CHUNK_BYTES
  size_t chunk_bytes = 1u << 20;
  // Transfers of at most this many bytes from a host buffer travel inline
  // on the control connection (one frame, no plugin requests); 0 disables.
  // Inline bytes are never copied into device memory on the progress thread
  // (a synchronous cudaMemcpy): a receive or write target in device memory
  // asks for them again through the plugin, landed by the GPU unpacker, and a
  // read into device memory is never answered inline.
  //                                                    TCPX_EAGER_BYTES
  size_t eager_bytes = 16u << 10;
  // How long a thread blocked in wait() (or a blocking send/recv/read/write)
  // drives progress itself, busy-polling, before it sleeps and leaves the
  // work to the background thread. Spinning turns a small transfer's
  // completion into no thread wake-up at all; 0 always sleeps at once. An
  // endpoint spins only while its spinning waits take no longer than its
  // sleeping ones (they take longer when the peer shares our core), trying
  // the other way now and then to keep both figures current
  // (engine/spin_policy.h), and in short windows on the host's clock that
  // every process on it shares, so two sleeping ends on one host try
  // spinning together (engine/spin_probe.h). The background thread, after
  // serving a peer's requests while the application leaves the endpoint
  // alone (a one-sided target), polls the sockets for the next ones for up to this long, by
  // the same rule and only while the gaps between them average under it,
  // before it sleeps. 0 also makes the background thread
  // sleep at once there, and yield its core at once when plugin transfers
  // stall, instead of choosing between that and spinning up to 2 ms the
  // same way.
  //                                                    TCPX_SPIN_US
  int spin_us = 200;
  // Connect + handshake deadline.                      TCPX_CONNECT_TIMEOUT_MS
  int connect_timeout_ms = 10000;
  // A peer that answers nothing on the control connection (not even the
  // engine's heartbeat) this long is declared dead: about this long after
  // it froze while transfers are outstanding, 1.5x while idle.
  //                                                    TCPX_PEER_TIMEOUT_MS
  int peer_timeout_ms = 5000;
  // Deadline of every transfer, from its post; 0 = none. A transfer still
  // waiting for the peer's application at its deadline ends TIMED_OUT (see
  // Endpoint::cancel for which ones can); Endpoint::set_timeout sets one
  // transfer's.                                        TCPX_TRANSFER_TIMEOUT_MS
  int transfer_timeout_ms = 0;
  // ncclNet v7 plugin to dlopen; empty = the built-in TCP plugin installed
  // next to the library.                               TCPX_NET_PLUGIN
  std::string plugin_path;
  // Plugin device (NIC) index this endpoint uses; -1 = the one matching the
  // GPU (local_gpu_idx % devices).                     TCPX_NET_DEV
  int net_dev = -1;
  // Address the control listener binds and advertises in its metadata; empty
  // = the first non-loopback IPv4 address, or 127.0.0.1 if there is none.
  //                                                    TCPX_LISTEN_ADDR
  std::string listen_addr;
  // Control listener port; 0 = ephemeral.              TCPX_LISTEN_PORT
  uint16_t listen_port = 0;

  // ---- What a peer can make this endpoint hold (docs/design.md, "Bounds") --
  // Per connection: sends the peer announced before a receive was posted for
  // them, eager ones with their bytes (each counts its bytes + 64). A send
  // past it is refused: it fails on the sender with BUSY, the connection
  // stays up.                                          TCPX_MAX_UNMATCHED_BYTES
  size_t max_unmatched_bytes = 16u << 20;
  // Application messages waiting for recv_message, per connection, and
  // notifications waiting for get_notifications, per endpoint (each counts
  // its bytes + 64). A peer that overruns it has its connection failed with
  // PROTOCOL_ERROR; what was queued before stays readable.
  //                                                    TCPX_MAX_UNDELIVERED_BYTES
  size_t max_undelivered_bytes = 64u << 20;
  // Control bytes queued for a peer that does not read them. Past it the
  // connection fails with TRANSPORT_ERROR.             TCPX_MAX_CONTROL_BACKLOG_BYTES
  size_t max_control_backlog_bytes = 64u << 20;

  // ---- Handshake admission and authentication ----
  // Incoming handshakes in progress at once; a connection beyond this is
  // answered with a REJECT ("too many handshakes in progress") and closed at
  // once. Each costs one socket and at most a 4 KiB frame buffer; a peer
  // that has not sent its HELLO within 3 s is closed.
  //                                                    TCPX_MAX_HANDSHAKES
  int max_handshakes = 64;
  // Shared secret proven by challenge-response (HMAC-SHA256) in every
  // handshake, both ways, before the accepting side allocates anything for
  // the peer; empty = off. Both endpoints need the same key: a key on one
  // side only is refused. At least 16 bytes (use a random one, e.g.
  // `openssl rand -hex 32`). Authenticates peers; does not encrypt.
  //                                                    TCPX_AUTH_KEY
  std::string auth_key;

  // Defaults overridden by any TCPX_* variable that is set. A malformed or
  // out-of-range value is an INVALID_ARGUMENT naming the variable, never a
  // silent fallback.
  static Status from_env(Config* out);
  // Range checks shared by from_env and Endpoint::create.
  Status validate() const;
  // One line per field, for tcpx-doctor and debug logs.
  std::string describe() const;
};

}  // namespace tcpx

#endif  // TCPX_CONFIG_H_
