#include "peer_registry.h"

#include <thread>

namespace tcpx::soak {

void PeerRegistry::add(std::shared_ptr<PeerRecord> peer) {
  std::lock_guard<std::mutex> l(mu_);
  by_port_[peer->port] = std::move(peer);
}

std::shared_ptr<PeerRecord> PeerRegistry::find_by_port(uint16_t port, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = by_port_.find(port);
      if (it != by_port_.end()) return it->second;
    }
    if (std::chrono::steady_clock::now() >= deadline) return nullptr;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void PeerRegistry::remove(const PeerRecord* peer) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_port_.find(peer->port);
  if (it != by_port_.end() && it->second.get() == peer) by_port_.erase(it);
}

}  // namespace tcpx::soak
