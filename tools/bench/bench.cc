// tcpx-bench: bandwidth and latency between two processes through
// tcpx::Endpoint directly (host memory). The client drives: before each size
// it sends the server a plan on the control channel (text application
// messages), both sides run it, and the receiving side checks the contents.
//
//   server: tcpx-bench --server [--port P]            (prints its address)
//   client: tcpx-bench --client HOST:PORT --mode send|read|write [--sizes ...]
//           tcpx-bench --client HOST:PORT --latency    (8-byte ping-pong)
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "options.h"
#include "tcpx/endpoint.h"

namespace tcpx::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kWaitMs = 60000;  // a transfer slower than this is a failure

uint8_t pattern(size_t size, size_t j) {
  return static_cast<uint8_t>(j * 131 + size * 7 + (j >> 12));
}
void fill(uint8_t* p, size_t n) {
  for (size_t j = 0; j < n; ++j) p[j] = pattern(n, j);
}
bool verify(const uint8_t* p, size_t n) {
  for (size_t j = 0; j < n; ++j)
    if (p[j] != pattern(n, j)) return false;
  return true;
}

std::string to_hex(const FifoItem& f) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t b : f.bytes) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}
bool from_hex(const std::string& s, FifoItem* f) {
  if (s.size() != 128) return false;
  for (size_t i = 0; i < 64; ++i) f->bytes[i] = static_cast<uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return true;
}

Status send_text(Endpoint& ep, ConnId c, const std::string& s) { return ep.send_message(c, s.data(), s.size()); }
Status recv_text(Endpoint& ep, ConnId c, std::string* s, int timeout_ms = kWaitMs) {
  std::vector<uint8_t> m;
  Status st = ep.recv_message(c, &m, timeout_ms);
  if (st.ok()) s->assign(m.begin(), m.end());
  return st;
}

// A registered, page-aligned host buffer.
struct Buffer {
  uint8_t* data = nullptr;
  size_t size = 0;
  MrId mr = 0;
  Status init(Endpoint& ep, size_t n) {
    size = n;
    data = static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096));
    if (data == nullptr) return Internal("out of memory");
    std::memset(data, 0, n);
    return ep.reg(data, n, &mr);
  }
  ~Buffer() { std::free(data); }
};

Status make_endpoint(const Options& o, std::unique_ptr<Endpoint>* ep) {
  Config c;
  TCPX_RETURN_IF_ERROR(Config::from_env(&c));
  if (o.channels > 0) c.channels_per_peer = o.channels;
  if (o.server && o.port != 0) c.listen_port = o.port;
  return Endpoint::create(o.gpu, c, ep);
}

// Keeps `window` receives posted until `iters` have completed.
Status receive_n(Endpoint& ep, ConnId c, Buffer& b, size_t size, long iters, int window) {
  std::deque<XferId> live;
  long posted = 0;
  while (posted < iters || !live.empty()) {
    while (posted < iters && static_cast<int>(live.size()) < window) {
      XferId id;
      TCPX_RETURN_IF_ERROR(ep.recv_async(c, b.mr, b.data, size, &id));
      live.push_back(id);
      ++posted;
    }
    TCPX_RETURN_IF_ERROR(ep.wait(live.front(), kWaitMs));
    live.pop_front();
  }
  return Status::Ok();
}

int run_server(const Options& o) {
  std::unique_ptr<Endpoint> ep;
  Status s = make_endpoint(o, &ep);
  if (!s.ok()) return std::fprintf(stderr, "tcpx-bench: %s\n", s.to_string().c_str()), 1;
  std::printf("tcpx-bench server listening on %s (port %u)\n%s\n", ep->metadata_string().c_str(),
              ep->local_info().port, ep->describe_path().c_str());
  std::fflush(stdout);
  ConnId c;
  PeerInfo peer;
  s = ep->accept(&c, &peer, -1);
  if (!s.ok()) return std::fprintf(stderr, "tcpx-bench: accept: %s\n", s.to_string().c_str()), 1;
  std::printf("client %s:%u connected\n", peer.ip.c_str(), peer.port);
  std::fflush(stdout);
  Buffer buf;
  for (;;) {
    std::string line;
    s = recv_text(*ep, c, &line, 3600 * 1000);  // idle client: an hour
    if (!s.ok()) break;
    std::istringstream in(line);
    std::string cmd, mode;
    in >> cmd;
    if (cmd == "BYE") break;
    if (cmd == "HELLO") {
      size_t max = 0;
      in >> max;
      s = buf.init(*ep, max);
      s = send_text(*ep, c, s.ok() ? "OK" : "ERR " + s.to_string());
      continue;
    }
    size_t size = 0;
    long iters = 0;
    int window = 1;
    in >> mode >> size >> iters >> window;
    if (cmd != "PLAN" || size == 0 || size > buf.size || iters < 1) {
      send_text(*ep, c, "ERR bad plan: " + line);
      continue;
    }
    std::string done = "DONE ok";
    if (mode == "send") {
      std::memset(buf.data, 0, size);
      send_text(*ep, c, "READY");
      s = receive_n(*ep, c, buf, size, iters, window * 2);
      if (!s.ok()) done = "DONE error " + s.to_string();
      else if (!verify(buf.data, size)) done = "DONE bad data";
    } else if (mode == "lat") {
      send_text(*ep, c, "READY");
      for (long i = 0; i < iters && s.ok(); ++i) {
        s = ep->recv(c, buf.mr, buf.data, size);
        if (s.ok()) s = ep->send(c, buf.mr, buf.data, size);
      }
      if (!s.ok()) done = "DONE error " + s.to_string();
    } else {  // read / write: the endpoint serves them; we only advertise
      if (mode == "read") fill(buf.data, size);
      else std::memset(buf.data, 0, size);
      FifoItem item;
      s = ep->advertise(c, buf.mr, buf.data, size, &item);
      send_text(*ep, c, s.ok() ? "READY " + to_hex(item) : "ERR " + s.to_string());
      std::string end;
      s = recv_text(*ep, c, &end);
      if (!s.ok()) break;
      if (mode == "write" && !verify(buf.data, size)) done = "DONE bad data";
    }
    send_text(*ep, c, done);
  }
  ep->close_connection(c);
  return 0;
}

struct Result {
  double seconds = 0;
  double avg_latency_us = 0;
};

// Runs `iters` transfers of `size` with `window` in flight.
Status run_plan(Endpoint& ep, ConnId c, Mode mode, Buffer& b, size_t size, long iters, int window,
                Result* r) {
  std::string line = std::string("PLAN ") + mode_name(mode) + " " + std::to_string(size) + " " +
                     std::to_string(iters) + " " + std::to_string(window);
  TCPX_RETURN_IF_ERROR(send_text(ep, c, line));
  std::string ready;
  TCPX_RETURN_IF_ERROR(recv_text(ep, c, &ready));
  FifoItem item{};
  if (ready.rfind("READY", 0) != 0) return Internal("server: " + ready);
  if (mode != Mode::kSend && !from_hex(ready.substr(6), &item)) return Internal("bad READY: " + ready);
  if (mode == Mode::kRead) std::memset(b.data, 0, size);
  std::deque<std::pair<XferId, Clock::time_point>> live;
  double lat_sum = 0;
  long posted = 0;
  auto t0 = Clock::now();
  while (posted < iters || !live.empty()) {
    while (posted < iters && static_cast<int>(live.size()) < window) {
      XferId id;
      Status s = mode == Mode::kSend   ? ep.send_async(c, b.mr, b.data, size, &id)
                 : mode == Mode::kRead ? ep.read_async(c, b.mr, b.data, size, item, &id)
                                       : ep.write_async(c, b.mr, b.data, size, item, &id);
      TCPX_RETURN_IF_ERROR(s);
      live.emplace_back(id, Clock::now());
      ++posted;
    }
    TCPX_RETURN_IF_ERROR(ep.wait(live.front().first, kWaitMs));
    lat_sum += std::chrono::duration<double, std::micro>(Clock::now() - live.front().second).count();
    live.pop_front();
  }
  r->seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r->avg_latency_us = lat_sum / static_cast<double>(iters);
  if (mode != Mode::kSend) TCPX_RETURN_IF_ERROR(send_text(ep, c, "END"));
  std::string done;
  TCPX_RETURN_IF_ERROR(recv_text(ep, c, &done));
  if (done != "DONE ok") return Internal("server: " + done);
  if (mode == Mode::kRead && !verify(b.data, size)) return Internal("read data differs");
  return Status::Ok();
}

Status run_latency(Endpoint& ep, ConnId c, Buffer& b, long iters) {
  for (int round = 0; round < 2; ++round) {  // warm-up round, then the measured one
    long n = round == 0 ? 100 : iters;
    TCPX_RETURN_IF_ERROR(send_text(ep, c, "PLAN lat 8 " + std::to_string(n) + " 1"));
    std::string ready;
    TCPX_RETURN_IF_ERROR(recv_text(ep, c, &ready));
    if (ready != "READY") return Internal("server: " + ready);
    std::memcpy(b.data, "pingpong", 8);
    auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
      TCPX_RETURN_IF_ERROR(ep.send(c, b.mr, b.data, 8));
      TCPX_RETURN_IF_ERROR(ep.recv(c, b.mr, b.data, 8));
    }
    double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    std::string done;
    TCPX_RETURN_IF_ERROR(recv_text(ep, c, &done));
    if (done != "DONE ok") return Internal("server: " + done);
    if (std::memcmp(b.data, "pingpong", 8) != 0) return Internal("ping-pong data differs");
    if (round == 1)
      std::printf("latency 8 B: %.2f us one-way (%.2f us round trip, %ld iterations)\n", us / n / 2,
                  us / n, n);
  }
  return Status::Ok();
}

int run_client(const Options& o) {
  std::unique_ptr<Endpoint> ep;
  Status s = make_endpoint(o, &ep);
  PeerInfo peer;
  std::string target = o.connect + "?" + std::to_string(o.remote_gpu);
  if (s.ok()) s = Endpoint::parse_metadata_string(target, &peer);
  ConnId c = 0;
  if (s.ok()) s = ep->connect(peer, &c);
  if (!s.ok()) return std::fprintf(stderr, "tcpx-bench: %s\n", s.to_string().c_str()), 1;
  std::printf("%s\n", ep->describe_path().c_str());
  size_t max = 8;
  for (size_t z : o.sizes) max = std::max(max, z);
  Buffer buf;
  s = buf.init(*ep, max);
  std::string ok;
  if (s.ok()) s = send_text(*ep, c, "HELLO " + std::to_string(max));
  if (s.ok()) s = recv_text(*ep, c, &ok);
  if (s.ok() && ok != "OK") s = Internal("server: " + ok);
  if (s.ok() && o.latency) s = run_latency(*ep, c, buf, o.iters > 0 ? o.iters : 20000);
  if (s.ok() && !o.latency) {
    fill(buf.data, max);
    std::printf("%-6s %10s %10s %12s %8s %7s\n", "mode", "size", "GB/s", "avg lat us", "iters", "window");
    for (size_t size : o.sizes) {
      if (o.mode != Mode::kRead) fill(buf.data, size);  // pattern of this size
      Result pilot, r;
      // Pilot: warms up, verifies contents, calibrates --seconds.
      long pilot_iters = std::max<long>(2, o.window);
      s = run_plan(*ep, c, o.mode, buf, size, pilot_iters, o.window, &pilot);
      if (!s.ok()) break;
      long iters = o.iters;
      if (iters == 0) {
        double per = pilot.seconds / static_cast<double>(pilot_iters);
        iters = std::clamp<long>(static_cast<long>(o.seconds / std::max(per, 1e-7)), o.window, 2000000);
      }
      s = run_plan(*ep, c, o.mode, buf, size, iters, o.window, &r);
      if (!s.ok()) break;
      double gbps = static_cast<double>(size) * static_cast<double>(iters) / r.seconds / 1e9;
      std::printf("%-6s %10s %10.3f %12.1f %8ld %7d\n", mode_name(o.mode), format_size(size).c_str(), gbps,
                  r.avg_latency_us, iters, o.window);
      std::fflush(stdout);
    }
  }
  send_text(*ep, c, "BYE");
  ep->close_connection(c);
  if (!s.ok()) return std::fprintf(stderr, "tcpx-bench: %s\n", s.to_string().c_str()), 1;
  return 0;
}

}  // namespace
}  // namespace tcpx::bench

int main(int argc, char** argv) {
  tcpx::bench::Options o;
  std::string why;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::printf("%s", tcpx::bench::kUsage);
      return 0;
    }
  }
  if (!tcpx::bench::parse_options(argc, argv, &o, &why)) {
    std::fprintf(stderr, "%s", why.c_str());
    return 2;
  }
  return o.server ? tcpx::bench::run_server(o) : tcpx::bench::run_client(o);
}
