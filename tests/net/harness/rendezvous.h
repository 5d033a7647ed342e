// Rendezvous: the out-of-band channel between the two halves of a conformance
// test. Plugin handles, sizes, seeds and "ready" tokens travel over one plain
// TCP connection as length-prefixed messages, so the second half can run on
// another host (an A3 pair) exactly as it runs on loopback.
//
// Every receive has a timeout: a half whose partner died fails instead of
// hanging.
#ifndef TCPX_TESTS_NET_HARNESS_RENDEZVOUS_H_
#define TCPX_TESTS_NET_HARNESS_RENDEZVOUS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "tcpx/status.h"

namespace tcpx::conformance {

// Default bound for one message to arrive. Generous because the partner may be
// a freshly exec'd process under AddressSanitizer on a loaded 2-core host.
inline constexpr int kRendezvousTimeoutMs = 30000;

class RendezvousConnection {
 public:
  RendezvousConnection() = default;
  explicit RendezvousConnection(int fd) : fd_(fd) {}
  RendezvousConnection(RendezvousConnection&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RendezvousConnection& operator=(RendezvousConnection&& o) noexcept;
  RendezvousConnection(const RendezvousConnection&) = delete;
  RendezvousConnection& operator=(const RendezvousConnection&) = delete;
  ~RendezvousConnection() { close(); }

  // Connects to "host:port" (IPv4, IPv6 in brackets, or a name), retrying
  // until timeout_ms because the driver may not be listening yet.
  static Status connect(const std::string& address, int timeout_ms, RendezvousConnection* out);

  bool is_open() const { return fd_ >= 0; }
  Status send(std::string_view message);
  Status recv(std::string* message, int timeout_ms = kRendezvousTimeoutMs);
  // Receives one message and fails unless it equals `expected`.
  Status expect(std::string_view expected, int timeout_ms = kRendezvousTimeoutMs);
  // Both sides call sync(tag): returns once the partner reached the same tag.
  Status sync(std::string_view tag, int timeout_ms = kRendezvousTimeoutMs);
  void close();

 private:
  int fd_ = -1;
};

// The driver's listening socket, shared by all tests of one process so a
// remote peer can be pointed at one fixed port for the whole run.
class RendezvousListener {
 public:
  // Binds "host:port" ("127.0.0.1:0" picks a free port on loopback).
  static Status open(const std::string& bind_address, RendezvousListener* out);
  RendezvousListener() = default;
  RendezvousListener(RendezvousListener&& o) noexcept : fd_(o.fd_), port_(o.port_) { o.fd_ = -1; }
  RendezvousListener& operator=(RendezvousListener&& o) noexcept;
  ~RendezvousListener();
  bool is_open() const { return fd_ >= 0; }
  int port() const { return port_; }
  Status accept(int timeout_ms, RendezvousConnection* out);

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Splits "host:port" / "[v6]:port".
Status split_host_port(const std::string& address, std::string* host, int* port);

}  // namespace tcpx::conformance

#endif  // TCPX_TESTS_NET_HARNESS_RENDEZVOUS_H_
