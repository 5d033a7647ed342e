// tcpx-bench --server: answers the client's plans (control.h) one at a time.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <sstream>
#include <string>

#include "control.h"
#include "measure.h"
#include "roles.h"

namespace tcpx::bench {
namespace {

constexpr int kIdleMs = 3600 * 1000;  // a client may think for an hour between plans
// How long a receive may stay unfinished before the server looks for STOP.
// Short, so the CPU figure stops soon after the client's last send; a stall
// this long in mid-run only costs one look at the message queue.
constexpr int kQuietMs = 5;

// Receives kept posted: twice the client's window, so a send never waits for
// one, but at most kAheadBytes (and at least 2), because after STOP every
// receive posted beyond the client's count costs an extra, untimed send.
constexpr size_t kAheadBytes = size_t{256} << 20;
int receives_ahead(size_t size, int window) {
  return static_cast<int>(std::clamp<size_t>(kAheadBytes / size, 2, 2 * static_cast<size_t>(window)));
}

// Two-sided: keeps `window` receives posted until the client's STOP, then
// matches every send it made. *cpu_s: CPU used until the client went quiet.
Status serve_send(Endpoint& ep, ConnId c, Buffer& b, size_t size, int window, double* cpu_s) {
  std::deque<XferId> live;
  long posted = 0, total = -1;  // total: known once STOP arrived
  double cpu0 = cpu_seconds();
  for (;;) {
    while ((total < 0 || posted < total) && static_cast<int>(live.size()) < window) {
      XferId id;
      TCPX_RETURN_IF_ERROR(ep.recv_async(c, b.mr(), b.data(), size, &id));
      live.push_back(id);
      ++posted;
    }
    if (live.empty()) return Status::Ok();  // total known and all matched
    Status s = ep.wait(live.front(), total < 0 ? kQuietMs : kWaitMs);
    if (s.in_progress() && total < 0) {
      double cpu_at = cpu_seconds();
      std::string line;
      Status m = recv_text(ep, c, &line, 0);
      if (m.code() == StatusCode::kTimedOut) continue;  // a stall, not the end
      TCPX_RETURN_IF_ERROR(m);
      long sent = -1;
      if (std::sscanf(line.c_str(), "STOP %ld", &sent) != 1 || sent < 0)
        return ProtocolError("expected STOP n, got: " + line);
      // Receives already posted beyond `sent` are matched by extra sends.
      total = std::max(posted, sent);
      *cpu_s = cpu_at - cpu0;
      TCPX_RETURN_IF_ERROR(send_text(ep, c, "POSTED " + std::to_string(total)));
      continue;
    }
    if (s.in_progress()) return TimedOut("receive not done within " + std::to_string(kWaitMs) + " ms");
    TCPX_RETURN_IF_ERROR(s);
    live.pop_front();
  }
}

// Ping-pong: echoes each ping until an empty one, which ends the plan. The
// length says it, so the server never reads the bytes in the timed loop
// (device memory would need a copy per ping to read them).
Status serve_latency(Endpoint& ep, ConnId c, Buffer& b, size_t size) {
  for (long pings = 0;; ++pings) {
    size_t got = 0;
    TCPX_RETURN_IF_ERROR(ep.recv(c, b.mr(), b.data(), size, &got));
    if (got == 0) return pings == 0 ? Status::Ok() : b.expect_pattern(0, size, "ping data");
    if (got != size) return ProtocolError("ping of " + std::to_string(got) + " bytes");
    TCPX_RETURN_IF_ERROR(ep.send(c, b.mr(), b.data(), size));
  }
}

// One plan; returns the DONE line, or an error that ends the session.
Status serve_plan(Endpoint& ep, ConnId c, Buffer& buf, const std::string& line, std::string* done) {
  std::istringstream in(line);
  std::string cmd, mode;
  size_t size = 0;
  int window = 1;
  in >> cmd >> mode >> size >> window;
  if (cmd != "PLAN" || size == 0 || size > buf.size() || window < 1) {
    *done = "ERR bad plan: " + line;
    return Status::Ok();
  }
  double cpu_s = 0;
  Status s;
  if (mode == "send") {
    TCPX_RETURN_IF_ERROR(buf.zero(size));
    TCPX_RETURN_IF_ERROR(send_text(ep, c, "READY"));
    s = serve_send(ep, c, buf, size, receives_ahead(size, window), &cpu_s);
    if (s.ok()) s = buf.expect_pattern(0, size, "received data");
  } else if (mode == "lat") {
    TCPX_RETURN_IF_ERROR(send_text(ep, c, "READY"));
    double cpu0 = cpu_seconds();
    s = serve_latency(ep, c, buf, size);
    cpu_s = cpu_seconds() - cpu0;
  } else if (mode == "read" || mode == "write") {  // the endpoint serves them
    TCPX_RETURN_IF_ERROR(mode == "read" ? buf.fill(0, size) : buf.zero(size));
    FifoItem item;
    TCPX_RETURN_IF_ERROR(ep.advertise(c, buf.mr(), buf.data(), size, &item));
    TCPX_RETURN_IF_ERROR(send_text(ep, c, "READY " + to_hex(item)));
    double cpu0 = cpu_seconds();
    std::string end;
    TCPX_RETURN_IF_ERROR(recv_text(ep, c, &end, kIdleMs));
    cpu_s = cpu_seconds() - cpu0;
    if (end != "END") s = ProtocolError("expected END, got: " + end);
    else if (mode == "write") s = buf.expect_pattern(0, size, "written data");
  } else {
    *done = "ERR bad mode: " + line;
    return Status::Ok();
  }
  char cpu[32];
  std::snprintf(cpu, sizeof(cpu), "%.6f", cpu_s);
  *done = s.ok() ? std::string("DONE ok ") + cpu : "DONE error " + s.to_string();
  return Status::Ok();
}

}  // namespace

int run_server(const Options& o) {
  std::unique_ptr<Endpoint> ep;
  ThreadCounts threads;
  Status s = make_endpoint(o, &ep, &threads);
  if (!s.ok()) return std::fprintf(stderr, "tcpx-bench: %s\n", s.to_string().c_str()), 1;
  std::printf("tcpx-bench server listening on %s (port %u)\n%s\n", ep->metadata_string().c_str(),
              ep->local_info().port, ep->describe_path().c_str());
  print_memory(o);
  std::fflush(stdout);
  ConnId c;
  PeerInfo peer;
  s = ep->accept(&c, &peer, -1);
  if (!s.ok()) return std::fprintf(stderr, "tcpx-bench: accept: %s\n", s.to_string().c_str()), 1;
  threads.connected = thread_count();
  std::printf("client %s:%u connected\n", peer.ip.c_str(), peer.port);
  threads.print();
  std::fflush(stdout);
  Buffer buf;
  for (;;) {
    std::string line, reply;
    s = recv_text(*ep, c, &line, kIdleMs);
    if (!s.ok() || line == "BYE") break;
    if (line.rfind("HELLO ", 0) == 0) {
      Status r = !buf.empty() ? InvalidArgument("HELLO twice")
                              : buf.init(*ep, std::stoull(line.substr(6)), o.cuda_mem, o.gpu);
      reply = r.ok() ? "OK" : "ERR " + r.to_string();
    } else {
      s = serve_plan(*ep, c, buf, line, &reply);
      if (!s.ok()) break;
    }
    s = send_text(*ep, c, reply);
    if (!s.ok()) break;
  }
  (void)ep->close_connection(c);  // done with it; the verdict is s
  if (!s.ok()) return std::fprintf(stderr, "tcpx-bench: %s\n", s.to_string().c_str()), 1;
  return 0;
}

}  // namespace tcpx::bench
