// The soak's peers as the server knows them: the process, its control port
// (how an accepted connection is tied to its process: accept() reports the
// peer's listen port), and what the soak did to it, which decides whether an
// error on its connection was expected.
#ifndef TCPX_TESTS_SOAK_PEER_REGISTRY_H_
#define TCPX_TESTS_SOAK_PEER_REGISTRY_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "support/child_process.h"

namespace tcpx::soak {

// kThawed: frozen until declared dead, then continued (SIGCONT): it must
// find out by itself that its connection is gone, and exit.
enum class Fate { kAlive, kKilled, kFrozen, kThawed };

struct PeerRecord {
  int id = 0;
  uint16_t port = 0;
  test::ChildProcess process;  // touched by the orchestrator thread only
  std::atomic<Fate> fate{Fate::kAlive};
  std::atomic<bool> session_started{false}, session_ended{false};
  std::chrono::steady_clock::time_point killed_at, frozen_at, thawed_at;
};

class PeerRegistry {
 public:
  void add(std::shared_ptr<PeerRecord> peer);
  // The peer listening on `port`, waiting up to timeout_ms for the
  // orchestrator to register it (it reads the port after the peer printed
  // it, which may be after the peer connected). nullptr if none.
  std::shared_ptr<PeerRecord> find_by_port(uint16_t port, int timeout_ms);
  void remove(const PeerRecord* peer);

 private:
  std::mutex mu_;
  std::map<uint16_t, std::shared_ptr<PeerRecord>> by_port_;
};

}  // namespace tcpx::soak

#endif  // TCPX_TESTS_SOAK_PEER_REGISTRY_H_
