// tcpx-bench --client: drives the server through one plan per figure
// (control.h). Every figure is a warm-up run of the same plan, then a run of
// transfers until --seconds have passed; the line says how long it measured
// and how many transfers it counted.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "control.h"
#include "measure.h"
#include "roles.h"

namespace tcpx::bench {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Reads "DONE ok <server cpu seconds>".
Status expect_done(Endpoint& ep, ConnId c, double* server_cpu_s) {
  std::string done;
  TCPX_RETURN_IF_ERROR(recv_text(ep, c, &done));
  if (std::sscanf(done.c_str(), "DONE ok %lf", server_cpu_s) != 1) return Internal("server: " + done);
  return Status::Ok();
}

struct Figure {
  long transfers = 0;
  double seconds = 0;
  double client_cpu_s = 0, server_cpu_s = 0;
};

// send / read / write: `window` transfers in flight until `seconds` passed.
Status run_bandwidth(Endpoint& ep, ConnId c, Mode mode, Buffer& b, size_t size, int window,
                     double seconds, Figure* f) {
  TCPX_RETURN_IF_ERROR(send_text(ep, c, std::string("PLAN ") + mode_name(mode) + " " +
                                            std::to_string(size) + " " + std::to_string(window)));
  std::string ready;
  TCPX_RETURN_IF_ERROR(recv_text(ep, c, &ready));
  FifoItem item{};
  if (ready.rfind("READY", 0) != 0) return Internal("server: " + ready);
  if (mode != Mode::kSend && !from_hex(ready.substr(6), &item)) return Internal("bad READY: " + ready);
  TCPX_RETURN_IF_ERROR(mode == Mode::kRead ? b.zero(size) : b.fill(0, size));
  std::deque<XferId> live;
  bool posting = true;
  double cpu0 = cpu_seconds();
  auto t0 = Clock::now(), end = t0 + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(seconds));
  while (posting || !live.empty()) {
    while (posting && static_cast<int>(live.size()) < window) {
      XferId id;
      TCPX_RETURN_IF_ERROR(mode == Mode::kSend   ? ep.send_async(c, b.mr(), b.data(), size, &id)
                           : mode == Mode::kRead ? ep.read_async(c, b.mr(), b.data(), size, item, &id)
                                                 : ep.write_async(c, b.mr(), b.data(), size, item, &id));
      live.push_back(id);
    }
    TCPX_RETURN_IF_ERROR(ep.wait(live.front(), kWaitMs));
    live.pop_front();
    ++f->transfers;
    posting = posting && Clock::now() < end;
  }
  f->seconds = since(t0);
  f->client_cpu_s = cpu_seconds() - cpu0;
  if (mode == Mode::kSend) {
    // The server may have posted receives beyond ours: match them, untimed.
    std::string posted;
    TCPX_RETURN_IF_ERROR(send_text(ep, c, "STOP " + std::to_string(f->transfers)));
    TCPX_RETURN_IF_ERROR(recv_text(ep, c, &posted));
    long total = 0;
    if (std::sscanf(posted.c_str(), "POSTED %ld", &total) != 1 || total < f->transfers)
      return Internal("server: " + posted);
    for (long i = f->transfers; i < total; ++i) TCPX_RETURN_IF_ERROR(ep.send(c, b.mr(), b.data(), size));
  } else {
    TCPX_RETURN_IF_ERROR(send_text(ep, c, "END"));
  }
  TCPX_RETURN_IF_ERROR(expect_done(ep, c, &f->server_cpu_s));
  return mode == Mode::kRead ? b.expect_pattern(0, size, "read data") : Status::Ok();
}

// Ping-pong of `size` bytes until `seconds` passed, then an empty ping that
// ends the plan; one-way latencies (half round trips) in microseconds. The
// buffer holds the ping and, after it, the echo.
Status run_latency(Endpoint& ep, ConnId c, Buffer& b, size_t size, double seconds,
                   std::vector<double>* one_way_us) {
  TCPX_RETURN_IF_ERROR(send_text(ep, c, "PLAN lat " + std::to_string(size) + " 1"));
  std::string ready;
  TCPX_RETURN_IF_ERROR(recv_text(ep, c, &ready));
  if (ready != "READY") return Internal("server: " + ready);
  uint8_t* ping = b.data();
  uint8_t* echo = b.data() + size;
  TCPX_RETURN_IF_ERROR(b.fill(0, size));
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (auto t = Clock::now(); t < end; t = Clock::now()) {
    TCPX_RETURN_IF_ERROR(ep.send(c, b.mr(), ping, size));
    TCPX_RETURN_IF_ERROR(ep.recv(c, b.mr(), echo, size));
    one_way_us->push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count() / 2);
  }
  TCPX_RETURN_IF_ERROR(ep.send(c, b.mr(), ping, 0));
  double server_cpu_s;
  TCPX_RETURN_IF_ERROR(expect_done(ep, c, &server_cpu_s));
  return one_way_us->empty() ? Status::Ok() : b.expect_pattern(size, size, "echo");
}

Status sweep_bandwidth(Endpoint& ep, ConnId c, const Options& o, Buffer& buf) {
  std::printf("%-6s %8s %9s %10s %8s %6s %9s %11s\n", "mode", "size", "GB/s", "transfers", "seconds",
              "window", "cpu_s/GB", "peer_cpu_s/GB");
  for (size_t size : o.sizes) {
    Figure warm, f;
    if (o.warmup > 0) TCPX_RETURN_IF_ERROR(run_bandwidth(ep, c, o.mode, buf, size, o.window, o.warmup, &warm));
    TCPX_RETURN_IF_ERROR(run_bandwidth(ep, c, o.mode, buf, size, o.window, o.seconds, &f));
    double gb = static_cast<double>(size) * static_cast<double>(f.transfers) / 1e9;
    std::printf("%-6s %8s %9.3f %10ld %8.3f %6d %9.3f %11.3f\n", mode_name(o.mode), format_size(size).c_str(),
                gb / f.seconds, f.transfers, f.seconds, o.window, f.client_cpu_s / gb, f.server_cpu_s / gb);
    std::fflush(stdout);
  }
  return Status::Ok();
}

Status sweep_latency(Endpoint& ep, ConnId c, const Options& o, Buffer& buf) {
  std::printf("%-6s %8s %9s %9s %9s %10s %8s\n", "mode", "size", "p50_us", "p99_us", "avg_us", "pings",
              "seconds");
  for (size_t size : o.sizes) {
    std::vector<double> warm, us;
    if (o.warmup > 0) TCPX_RETURN_IF_ERROR(run_latency(ep, c, buf, size, o.warmup, &warm));
    auto t0 = Clock::now();
    TCPX_RETURN_IF_ERROR(run_latency(ep, c, buf, size, o.seconds, &us));
    double secs = since(t0), avg = 0;
    for (double v : us) avg += v;
    avg /= std::max<size_t>(1, us.size());
    double p50 = percentile(us, 50), p99 = percentile(us, 99);
    std::printf("%-6s %8s %9.2f %9.2f %9.2f %10zu %8.3f\n", "lat", format_size(size).c_str(), p50, p99, avg,
                us.size(), secs);
    std::fflush(stdout);
  }
  return Status::Ok();
}

}  // namespace

int run_client(const Options& o) {
  std::unique_ptr<Endpoint> ep;
  ThreadCounts threads;
  Status s = make_endpoint(o, &ep, &threads);
  PeerInfo peer;
  std::string target = o.connect + "?" + std::to_string(o.remote_gpu);
  if (s.ok()) s = Endpoint::parse_metadata_string(target, &peer);
  ConnId c = 0;
  if (s.ok()) s = ep->connect(peer, &c);
  if (!s.ok()) return std::fprintf(stderr, "tcpx-bench: %s\n", s.to_string().c_str()), 1;
  threads.connected = thread_count();
  std::printf("%s\n", ep->describe_path().c_str());
  print_memory(o);
  threads.print();
  size_t max = *std::max_element(o.sizes.begin(), o.sizes.end());
  Buffer buf;
  s = buf.init(*ep, o.latency ? 2 * max : max, o.cuda_mem, o.gpu);  // latency: ping and echo side by side
  std::string ok;
  if (s.ok()) s = send_text(*ep, c, "HELLO " + std::to_string(max));
  if (s.ok()) s = recv_text(*ep, c, &ok);
  if (s.ok() && ok != "OK") s = Internal("server: " + ok);
  if (s.ok()) s = o.latency ? sweep_latency(*ep, c, o, buf) : sweep_bandwidth(*ep, c, o, buf);
  // Best effort: the verdict is s; the server ends either way.
  (void)send_text(*ep, c, "BYE");
  (void)ep->close_connection(c);
  if (!s.ok()) return std::fprintf(stderr, "tcpx-bench: %s\n", s.to_string().c_str()), 1;
  return 0;
}

}  // namespace tcpx::bench
