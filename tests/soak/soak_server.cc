#include "soak_server.h"

#include <signal.h>

#include <cstdio>

#include "server_session.h"
#include "support/child_process.h"

namespace tcpx::soak {
namespace {

int64_t ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

}  // namespace

SoakServer::SoakServer(const SoakOptions& opts) : opts_(opts), rng_(opts.seed) {}

SoakServer::~SoakServer() {
  // Normally run() has done all this; after an early failure too.
  for (auto& p : peers_) p->process.kill_and_reap();
  abandon_ = true;
  stop_accepting_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  join_finished_sessions(/*all=*/true);
}

Status SoakServer::start() {
  Config cfg;
  TCPX_RETURN_IF_ERROR(Config::from_env(&cfg));
  cfg.listen_addr = "127.0.0.1";
  cfg.peer_timeout_ms = opts_.peer_timeout_ms;
  TCPX_RETURN_IF_ERROR(Endpoint::create(0, cfg, &ep_));
  inbox_ = std::make_unique<NotificationInbox>(ep_.get());
  acceptor_ = std::thread([this] { accept_loop(); });
  return Status::Ok();
}

void SoakServer::accept_loop() {
  while (!stop_accepting_) {
    ConnId conn = 0;
    PeerInfo info;
    Status s = ep_->accept(&conn, &info, 200);
    if (s.code() == StatusCode::kTimedOut) continue;
    if (!s.ok()) {
      stats_.count_unexpected("accept failed", s.to_string());
      continue;
    }
    ++stats_.sessions;
    auto session = std::make_unique<Session>();
    Session* raw = session.get();
    std::lock_guard<std::mutex> l(sessions_mu_);
    session->thread = std::thread([this, conn, port = info.port, raw] { serve_connection(conn, port, raw); });
    sessions_.push_back(std::move(session));
  }
}

void SoakServer::serve_connection(ConnId conn, uint16_t peer_port, Session* session) {
  std::shared_ptr<PeerRecord> peer = registry_.find_by_port(peer_port, 30000);
  if (peer == nullptr) {
    stats_.count_unexpected("connection from an unknown peer", "port " + std::to_string(peer_port));
  } else {
    peer->session_started = true;
    Status s;
    bool data_failed = false;
    {
      ServerSession served(ep_.get(), inbox_.get(), &stats_, conn, &abandon_);
      s = served.run();
      data_failed = served.data_failed();
    }
    classify_end(s, data_failed, *peer);
    peer->session_ended = true;
  }
  // Already closed when the peer died; that answer does not matter.
  (void)ep_->close_connection(conn);
  inbox_->forget(conn);
  session->done = true;
}

void SoakServer::classify_end(const Status& s, bool data_failed, const PeerRecord& peer) {
  if (s.ok() || data_failed) return;  // a clean goodbye, or already counted
  Fate fate = peer.fate.load();
  const char* cause = fate == Fate::kKilled ? "after kill" : fate != Fate::kAlive ? "after freeze" : nullptr;
  if (cause != nullptr && s.code() == StatusCode::kPeerClosed) {
    stats_.count_expected(std::string("PEER_CLOSED ") + cause);
    return;
  }
  stats_.count_unexpected(std::string(status_code_name(s.code())) + (cause ? std::string(" ") + cause : " on a live peer"),
                          "peer " + std::to_string(peer.id) + ": " + s.to_string());
}

void SoakServer::spawn_peer() {
  auto peer = std::make_shared<PeerRecord>();
  peer->id = next_peer_id_++;
  uint64_t ops = std::uniform_int_distribution<uint64_t>(opts_.min_ops, opts_.max_ops)(rng_);
  test::ChildOptions o;
  o.stdout_to = test::ChildStream::kPipe;
  Status s = peer->process.spawn({test::self_exe(), "--peer", std::to_string(ep_->local_info().port),
                                  std::to_string(rng_()), std::to_string(ops)},
                                 o);
  std::string port;
  if (s.ok()) s = peer->process.expect_line("READY ", &port, 30000);
  if (!s.ok()) {
    stats_.count_unexpected("peer did not start", s.to_string());
    return;
  }
  peer->port = static_cast<uint16_t>(std::stoi(port.substr(6)));
  ++stats_.peers_started;
  registry_.add(peer);
  peers_.push_back(std::move(peer));
}

void SoakServer::inject_fault() {
  // Only peers in the middle of their traffic: a fault before the connection
  // exists tests nothing the engine sees.
  std::vector<PeerRecord*> busy;
  for (auto& p : peers_)
    if (p->fate == Fate::kAlive && p->session_started && !p->session_ended) busy.push_back(p.get());
  if (busy.empty()) return;
  PeerRecord* victim = busy[std::uniform_int_distribution<size_t>(0, busy.size() - 1)(rng_)];
  if (rng_() % 2 == 0) {
    victim->fate = Fate::kKilled;  // before the signal: the session's error must find it
    victim->killed_at = Clock::now();
    victim->process.kill_and_reap();
    ++stats_.kills;
  } else {
    victim->fate = Fate::kFrozen;
    victim->frozen_at = Clock::now();
    if (!victim->process.stop().ok()) stats_.count_unexpected("SIGSTOP failed", std::to_string(victim->id));
    ++stats_.freezes;
  }
}

void SoakServer::reap_peers() {
  // A frozen peer must be declared dead: about peer_timeout_ms with a
  // transfer outstanding, 1.5x when idle; the rest is slack for a busy host.
  const int64_t detect_limit_ms = 2 * opts_.peer_timeout_ms + 5000;
  auto now = Clock::now();
  for (auto it = peers_.begin(); it != peers_.end();) {
    PeerRecord& p = **it;
    bool gone = false;
    if (p.fate == Fate::kKilled) {
      // One killed just after it connected may get its session a moment
      // later: that session must still find the record.
      gone = p.session_ended || (!p.session_started && ms_between(p.killed_at, now) > 3000);
    } else if (p.fate == Fate::kThawed) {
      test::ExitStatus st;
      if (!p.process.running() || p.process.wait(0, &st).ok()) {
        gone = true;  // exits 1 after its first failed call, as it should
      } else if (ms_between(p.thawed_at, now) > detect_limit_ms) {
        stats_.count_unexpected("thawed peer never noticed its connection was closed",
                                "peer " + std::to_string(p.id) + " still running " + std::to_string(detect_limit_ms) +
                                    " ms after SIGCONT");
        p.process.kill_and_reap();
        gone = true;
      }
    } else if (p.fate == Fate::kFrozen) {
      if (p.session_ended) {
        stats_.note_dead_declared_ms(ms_between(p.frozen_at, now));
        // Half of them wake up to a connection the server has closed.
        if (rng_() % 2 == 0 && p.process.resume().ok()) {
          p.fate = Fate::kThawed;
          p.thawed_at = now;
          ++stats_.thaws;
          ++it;
          continue;
        }
        gone = true;
      } else if (ms_between(p.frozen_at, now) > detect_limit_ms) {
        stats_.count_unexpected("frozen peer not declared dead",
                                "peer " + std::to_string(p.id) + " still connected " +
                                    std::to_string(detect_limit_ms) + " ms after SIGSTOP");
        // Killed now; the kKilled branch drops it once its session ended.
        p.fate = Fate::kKilled;
        p.killed_at = now;
        p.process.kill_and_reap();
      }
      if (gone) p.process.kill_and_reap();
    } else {
      test::ExitStatus st;
      if (p.process.running() && p.process.wait(0, &st).ok()) {
        if (st.exited && st.code == 0) ++stats_.retirements;
        else stats_.count_unexpected("peer failed", "peer " + std::to_string(p.id) + ": " + st.to_string());
      }
      // A retired peer stays listed until its session is over.
      gone = !p.process.running() && p.session_ended;
    }
    if (gone) {
      registry_.remove(&p);
      it = peers_.erase(it);
    } else {
      ++it;
    }
  }
}

void SoakServer::tick(bool faults) {
  reap_peers();
  join_finished_sessions(false);
  int running = 0;
  for (auto& p : peers_)
    if (p->fate == Fate::kAlive && p->process.running()) ++running;
  if (faults && running < opts_.peers) spawn_peer();
  if (faults && Clock::now() >= next_fault_) {
    inject_fault();
    std::uniform_int_distribution<int> jitter(opts_.fault_every_ms / 2, opts_.fault_every_ms * 3 / 2);
    next_fault_ = Clock::now() + std::chrono::milliseconds(jitter(rng_));
  }
}

void SoakServer::run_traffic(Clock::time_point until) {
  while (Clock::now() < until) {
    tick(/*faults=*/true);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void SoakServer::quiesce() {
  for (auto& p : peers_) {
    if (p->fate == Fate::kAlive && p->process.running()) {
      p->fate = Fate::kKilled;
      p->killed_at = Clock::now();
      ++stats_.quiesce_kills;
    }
    p->process.kill_and_reap();
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(3 * opts_.peer_timeout_ms + 10000);
  for (;;) {
    tick(/*faults=*/false);
    {
      std::lock_guard<std::mutex> l(sessions_mu_);
      if (peers_.empty() && sessions_.empty()) return;
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stats_.count_unexpected("sessions still open after every peer was killed",
                          std::to_string(peers_.size()) + " peers not reaped");
  abandon_ = true;
  join_finished_sessions(true);
  abandon_ = false;
  peers_.clear();
}

void SoakServer::join_finished_sessions(bool all) {
  std::list<std::unique_ptr<Session>> finished;
  {
    std::lock_guard<std::mutex> l(sessions_mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (all || (*it)->done) {
        finished.push_back(std::move(*it));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : finished) s->thread.join();
}

std::string SoakServer::verdict(const ProcessUsage& warm, const ProcessUsage& end, int seconds) {
  std::string why;
  if (stats_.unexpected() > 0) why += "unexpected errors; ";
  if (stats_.transfers() == 0) why += "no transfers; ";
  // Long enough runs must have exercised every fault.
  if (seconds >= 30 && (stats_.kills == 0 || stats_.freezes == 0 || stats_.retirements == 0))
    why += "a kind of fault never happened; ";
  long long growth_kib = static_cast<long long>(end.rss_kib) - static_cast<long long>(warm.rss_kib);
  if (growth_kib > opts_.rss_growth_mib * 1024LL)
    why += "RSS grew by " + std::to_string(growth_kib / 1024) + " MiB (bound " + std::to_string(opts_.rss_growth_mib) + "); ";
  if (end.fds > warm.fds + opts_.fd_slack)
    why += "fds grew from " + std::to_string(warm.fds) + " to " + std::to_string(end.fds) + "; ";
  if (end.threads > warm.threads + opts_.thread_slack)
    why += "threads grew from " + std::to_string(warm.threads) + " to " + std::to_string(end.threads) + "; ";
  return why;
}

int SoakServer::run() {
  auto t0 = Clock::now();
  Status s = start();
  if (!s.ok()) {
    std::fprintf(stderr, "soak: cannot start: %s\n", s.to_string().c_str());
    return 2;
  }
  std::printf("soak: %d s (warm-up %d s), %d peers, a fault every ~%d ms, peer timeout %d ms, seed %llu\n",
              opts_.seconds, opts_.warmup(), opts_.peers, opts_.fault_every_ms, opts_.peer_timeout_ms,
              static_cast<unsigned long long>(opts_.seed));
  std::fflush(stdout);
  next_fault_ = Clock::now() + std::chrono::milliseconds(opts_.fault_every_ms);
  run_traffic(t0 + std::chrono::seconds(opts_.warmup()));
  quiesce();
  ProcessUsage warm = ProcessUsage::sample();
  uint64_t warm_transfers = stats_.transfers();
  uint64_t warm_sessions = stats_.sessions.load();
  std::printf("soak: after warm-up (%llu transfers): %s\n", static_cast<unsigned long long>(warm_transfers),
              warm.to_string().c_str());
  std::fflush(stdout);

  ProcessUsage peak = warm;
  auto end = t0 + std::chrono::seconds(opts_.seconds);
  auto next_report = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < end) {
    run_traffic(std::min(end, Clock::now() + std::chrono::seconds(1)));
    ProcessUsage now = ProcessUsage::sample();
    peak.rss_kib = std::max(peak.rss_kib, now.rss_kib);
    peak.fds = std::max(peak.fds, now.fds);
    peak.threads = std::max(peak.threads, now.threads);
    if (Clock::now() >= next_report) {
      std::printf("soak: %lld s: %llu transfers, %.1f MiB, %llu unexpected; %s\n",
                  static_cast<long long>(ms_between(t0, Clock::now()) / 1000),
                  static_cast<unsigned long long>(stats_.transfers()), stats_.bytes() / 1048576.0,
                  static_cast<unsigned long long>(stats_.unexpected()), now.to_string().c_str());
      std::fflush(stdout);
      next_report += std::chrono::seconds(60);
    }
  }
  quiesce();
  ProcessUsage final_usage = ProcessUsage::sample();
  stop_accepting_ = true;
  acceptor_.join();

  double secs = ms_between(t0, Clock::now()) / 1000.0;
  std::printf("soak summary: %.1f s\n%s", secs, stats_.report().c_str());
  std::printf("usage after warm-up: %s\nusage at the end:    %s\npeak while running:  %s\n",
              warm.to_string().c_str(), final_usage.to_string().c_str(), peak.to_string().c_str());
  // Growth that scales with connections served points at per-connection
  // state kept after the connection ended.
  uint64_t served = stats_.sessions.load() - warm_sessions;
  long long growth = (static_cast<long long>(final_usage.rss_kib) - static_cast<long long>(warm.rss_kib)) * 1024;
  std::printf("rss growth per connection served after warm-up: %lld bytes (%llu connections)\n",
              served > 0 ? growth / static_cast<long long>(served) : 0LL, static_cast<unsigned long long>(served));
  std::string why = verdict(warm, final_usage, opts_.seconds);
  std::printf("soak %s%s\n", why.empty() ? "PASSED" : "FAILED: ", why.c_str());
  return why.empty() ? 0 : 1;
}

}  // namespace tcpx::soak
