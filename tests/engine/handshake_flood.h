// The attacker half of the handshake flood test, run inside engine_peer
// ("flood" role) so the accepting test process counts none of its sockets.
// Against 127.0.0.1:port it opens, all at once and each kind from its own
// thread:
//   silent     connections that never send a byte;
//   garbage    connections that send bytes that are no frame;
//   partial    connections that send the header of a maximal frame (1 MiB +
//              4 KiB of payload announced) and then nothing;
//   slowloris  connections that send a valid HELLO one byte per 100 ms.
// Slow and oversized kinds start first (0-100 ms), the silent ones last
// (300 ms), so each kind gets some of the target's handshake slots. Each
// kind waits (bounded by give_up_ms) until the target has closed every
// connection it opened, and prints one line:
//   RESULT <kind> opened=N connected=C closed=K busy=R open=O
//          min_served_ms=S max_close_ms=M sent=B
// closed: closed by the target (EOF or reset); busy: of those, refused with
// "too many handshakes in progress"; open: still open at give-up time;
// min_served_ms / max_close_ms: the shortest life of a connection that was
// not refused as busy (-1: none) and the longest of any, from connect to
// close; sent: the most bytes any one connection got to send. Then
// "HOLDING": the open ones stay open until a line arrives on stdin (or 20
// s), then "DONE".
#ifndef TCPX_TESTS_ENGINE_HANDSHAKE_FLOOD_H_
#define TCPX_TESTS_ENGINE_HANDSHAKE_FLOOD_H_

#include <cstdint>

namespace tcpx::test {

struct FloodCounts {
  int silent = 1000;
  int garbage = 1000;
  int partial = 200;
  int slowloris = 20;
};

// Returns 0 when every kind ran (whatever the target did), 2 on bad setup.
int run_handshake_flood(uint16_t port, const FloodCounts& counts, int give_up_ms);

}  // namespace tcpx::test

#endif  // TCPX_TESTS_ENGINE_HANDSHAKE_FLOOD_H_
