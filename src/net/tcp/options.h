// Everything the plugin reads from the environment, in one place. Values are
// read at init() except the bounce switch, read at each listen(), and the
// socket count, read at each plain connect() (the engine passes its own
// through the connectWithSockets extension instead).
#ifndef TCPX_NET_TCP_OPTIONS_H_
#define TCPX_NET_TCP_OPTIONS_H_

#include <string>
#include <vector>

namespace tcpx::tcp {

inline constexpr int kMaxSocketsPerComm = 8;

struct Options {
  // TCPX_P2P_TCP_IFNAME: comma-separated interface names to use, in order.
  std::vector<std::string> ifnames;
  // TCPX_P2P_TCP_FAMILY: 0 = IPv4 when the interface has it, else IPv6;
  // 4 or 6 = that family only.
  int family = 0;
  // TCPX_P2P_TCP_STRICT=1: behave like Google's TCPX plugin where it is
  // harsher than this one needs to be (see strict_emulation()).
  bool strict = false;
  // TCPX_P2P_TCP_READ_LOWAT: bytes (0 = off, up to 16 MiB). A receive with
  // at least this much still to come on a socket reads it only once this
  // much is queued (SO_RCVLOWAT + poll) instead of whatever arrived
  // (recv_comm.h).
  int read_lowat = kDefaultReadLowat;
  static constexpr int kDefaultReadLowat = 128 * 1024;
};

// Fills *out from the environment; false (with *why) on a malformed value.
bool read_options(Options* out, std::string* why);
// TCPX_P2P_TCP_NSOCKS (1..8, default 1); false (with *why) when malformed.
bool read_nsocks(int* out, std::string* why);
// TCPX_P2P_TCP_BOUNCE_HOST=1: host receives also land in the bounce buffer
// and come with loadMeta, like CUDA ones (tests the unpack path on CPUs).
// Read per listen comm, so one process can test both receive paths.
bool read_bounce_host(bool* out, std::string* why);

// Strict TCPX emulation, fixed by the first init() of the process. When on,
// the plugin does what Google's GPUDirect-TCPX plugin (v3.1.9) does, so an
// engine that survives this plugin survives that one (README.md, "Strict
// TCPX emulation"):
//   - a second init() in the process returns 3;
//   - a comm whose peer died (EOF, reset, socket error) neither completes nor
//     fails its requests: test() answers done=0 forever;
//   - accept() on a listen comm that already returned a comm or an error, and
//     connect() with a handle that already returned, are refused (5) loudly.
bool strict_emulation();
void set_strict_emulation(bool on);
// Options::read_lowat of the last successful init() (the default before).
int read_lowat();
void set_read_lowat(int bytes);
// A comm lost its peer (EOF, reset, socket error). Under strict emulation:
// sets *stalled (logging the first time, naming `comm` and the cause) and
// returns true, the comm's requests then stay pending; otherwise returns
// false and the caller fails the comm.
bool stall_on_peer_loss(const char* comm, bool* stalled, const char* why, int err);

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_OPTIONS_H_
