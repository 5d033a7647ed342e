// The long-lived side of the soak: one Endpoint serving a rotating set of
// peer processes (one ServerSession thread per connection), and the
// orchestrator that keeps `peers` of them running, kills (SIGKILL) or freezes
// (SIGSTOP, until the engine declares it dead) one now and then, and replaces
// those and the ones that retire. Resource use is sampled with no peer
// connected after the warm-up and again at the end.
#ifndef TCPX_TESTS_SOAK_SOAK_SERVER_H_
#define TCPX_TESTS_SOAK_SOAK_SERVER_H_

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "notification_inbox.h"
#include "peer_registry.h"
#include "process_usage.h"
#include "soak_options.h"
#include "soak_stats.h"
#include "tcpx/endpoint.h"

namespace tcpx::soak {

class SoakServer {
 public:
  explicit SoakServer(const SoakOptions& opts);
  ~SoakServer();
  // Runs the whole soak, prints the summary; 0 when it passed.
  int run();

 private:
  using Clock = std::chrono::steady_clock;
  struct Session {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  Status start();
  void accept_loop();
  void serve_connection(ConnId conn, uint16_t peer_port, Session* session);
  void classify_end(const Status& s, bool data_failed, const PeerRecord& peer);
  // Keeps the peers running, with faults, until `until`.
  void run_traffic(Clock::time_point until);
  // Kills every peer and waits for their sessions to end.
  void quiesce();
  void tick(bool faults);
  void spawn_peer();
  void inject_fault();
  void reap_peers();
  void join_finished_sessions(bool all);
  std::string verdict(const ProcessUsage& warm, const ProcessUsage& end, int seconds);

  SoakOptions opts_;
  std::mt19937_64 rng_;
  std::unique_ptr<Endpoint> ep_;
  std::unique_ptr<NotificationInbox> inbox_;
  PeerRegistry registry_;
  SoakStats stats_;
  std::atomic<bool> stop_accepting_{false}, abandon_{false};
  std::thread acceptor_;
  std::mutex sessions_mu_;
  std::list<std::unique_ptr<Session>> sessions_;
  std::vector<std::shared_ptr<PeerRecord>> peers_;  // orchestrator thread only
  int next_peer_id_ = 0;
  Clock::time_point next_fault_;
};

}  // namespace tcpx::soak

#endif  // TCPX_TESTS_SOAK_SOAK_SERVER_H_
