// FaultProxy: a TCP relay on 127.0.0.1 between an endpoint's control
// connection and its peer, for injecting faults into a live connection (the
// plugin comms do not pass through it: they connect directly). It relays one
// connection, byte for byte, until told to corrupt the next bytes it forwards
// from the connecting side or to cut both sockets. Every wait inside is
// bounded; the destructor stops the relay thread and closes everything.
#ifndef TCPX_TESTS_ENGINE_FAULT_PROXY_H_
#define TCPX_TESTS_ENGINE_FAULT_PROXY_H_

#include <atomic>
#include <cstdint>
#include <thread>

namespace tcpx::test {

class FaultProxy {
 public:
  // Listens on an ephemeral loopback port; relays to 127.0.0.1:target_port.
  explicit FaultProxy(uint16_t target_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  bool ok() const { return listen_fd_ >= 0; }
  uint16_t port() const { return port_; }
  // The next read from the connecting side has its first 4 bytes inverted
  // before it is forwarded (a frame's magic, when the stream was quiet).
  void corrupt_next_from_client() { corrupt_.store(true); }
  // Closes both sockets at once, as a middlebox reset would.
  void cut() { cut_.store(true); }
  // Bytes relayed so far from the connecting side.
  uint64_t client_bytes() const { return client_bytes_.load(); }

 private:
  void run();
  uint16_t target_port_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> corrupt_{false};
  std::atomic<bool> cut_{false};
  std::atomic<uint64_t> client_bytes_{0};
  std::thread thread_;
};

}  // namespace tcpx::test

#endif  // TCPX_TESTS_ENGINE_FAULT_PROXY_H_
