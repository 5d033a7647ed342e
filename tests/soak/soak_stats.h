// What the soak counts, from any thread, and the verdict it feeds: transfers
// and bytes per operation kind, errors by kind (expected ones, from peers the
// soak killed or froze, apart from unexpected ones), and the fault events.
#ifndef TCPX_TESTS_SOAK_SOAK_STATS_H_
#define TCPX_TESTS_SOAK_SOAK_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "soak_ops.h"

namespace tcpx::soak {

class SoakStats {
 public:
  void count_transfer(OpKind kind, size_t bytes);
  // An error the soak caused on purpose: `what` says which kind, e.g.
  // "PEER_CLOSED after kill".
  void count_expected(const std::string& what);
  // Anything else: a failed data check, an error on a live peer's
  // connection, a hang. Each fails the soak; the first few are kept whole.
  void count_unexpected(const std::string& what, const std::string& detail);

  std::atomic<uint64_t> kills{0}, freezes{0}, retirements{0}, peers_started{0}, sessions{0};
  std::atomic<uint64_t> thaws{0};          // frozen peers continued after being declared dead
  std::atomic<uint64_t> quiesce_kills{0};  // every peer, after the warm-up and at the end
  std::atomic<int64_t> max_dead_declared_ms{0};  // freeze -> PEER_CLOSED, worst seen
  void note_dead_declared_ms(int64_t ms);

  uint64_t transfers() const;
  uint64_t bytes() const;
  uint64_t unexpected() const;
  // Multi-line report: per kind, errors by kind, faults.
  std::string report() const;

 private:
  std::array<std::atomic<uint64_t>, kOpKinds> transfers_{}, bytes_{};
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> expected_, unexpected_;
  std::vector<std::string> first_unexpected_;
};

}  // namespace tcpx::soak

#endif  // TCPX_TESTS_SOAK_SOAK_STATS_H_
