// engine_peer: the second process of the engine tests. It creates a loopback
// endpoint, prints "READY <port>", accepts one connection and plays a role.
// Results go to stdout as single lines; commands (for interactive roles)
// come on stdin. Every wait is bounded; the test kills it at the end anyway.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "handshake_flood.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

namespace {

void say(const std::string& s) {
  std::cout << s << std::endl;  // endl flushes: the test reads line by line
}

std::string line_in() {
  std::string l;
  if (!std::getline(std::cin, l)) return "quit";
  return l;
}

int role_echo(Endpoint& ep, ConnId c, size_t count, size_t max) {
  std::vector<uint8_t> buf(std::max<size_t>(max, 1));
  MrId mr;
  if (!ep.reg(buf.data(), buf.size(), &mr).ok()) return 2;
  for (size_t i = 0; i < count; ++i) {
    size_t got = 0;
    Status s = ep.recv(c, mr, buf.data(), max, &got);
    if (!s.ok()) { say("ERROR recv " + s.to_string()); return 1; }
    s = ep.send(c, mr, buf.data(), got);
    if (!s.ok()) { say("ERROR send " + s.to_string()); return 1; }
  }
  say("DONE");
  line_in();
  return 0;
}

int role_mixed(Endpoint& ep, ConnId c, uint64_t seed, size_t n) {
  // The test sends sizes (seed, 0..n) and receives sizes (seed+1, 0..n).
  size_t in_total = 0, out_total = 0;
  std::vector<size_t> in_off(n), out_off(n);
  for (size_t i = 0; i < n; ++i) { in_off[i] = in_total; in_total += mixed_size(seed, i); }
  for (size_t i = 0; i < n; ++i) { out_off[i] = out_total; out_total += mixed_size(seed + 1, i); }
  std::vector<uint8_t> in(in_total + 1), out(out_total + 1);
  for (size_t i = 0; i < n; ++i) fill_pattern(&out[out_off[i]], mixed_size(seed + 1, i), seed * 1000 + i);
  MrId in_mr, out_mr;
  if (!ep.reg(in.data(), in.size(), &in_mr).ok() || !ep.reg(out.data(), out.size(), &out_mr).ok()) return 2;
  std::vector<XferId> recvs(n), sends(n);
  for (size_t i = 0; i < n; ++i) {
    Status s = ep.recv_async(c, in_mr, &in[in_off[i]], mixed_size(seed, i), &recvs[i]);
    if (s.ok()) s = ep.send_async(c, out_mr, &out[out_off[i]], mixed_size(seed + 1, i), &sends[i]);
    if (!s.ok()) { say("RESULT post failed " + s.to_string()); return 1; }
  }
  for (size_t i = 0; i < n; ++i) {
    Status a = ep.wait(recvs[i], 60000), b = ep.wait(sends[i], 60000);
    if (!a.ok() || !b.ok()) { say("RESULT transfer " + std::to_string(i) + " " + a.to_string() + " / " + b.to_string()); return 1; }
  }
  for (size_t i = 0; i < n; ++i) {
    size_t bad = check_pattern(&in[in_off[i]], mixed_size(seed, i), seed * 7000 + i);
    if (bad != kPatternMatches) { say("RESULT bad data in transfer " + std::to_string(i) + " at " + std::to_string(bad)); return 1; }
  }
  say("RESULT ok");
  line_in();
  return 0;
}

int role_small_recv(Endpoint& ep, ConnId c, size_t cap) {
  std::vector<uint8_t> buf(cap + 4096 + (1 << 20), 0xAB);
  MrId mr;
  if (!ep.reg(buf.data(), buf.size(), &mr).ok()) return 2;
  Status s = ep.recv(c, mr, buf.data(), cap);
  bool guard_ok = std::all_of(buf.begin() + static_cast<long>(cap), buf.end(), [](uint8_t b) { return b == 0xAB; });
  say(std::string("RESULT ") + status_code_name(s.code()) + " guard=" + (guard_ok ? "ok" : "bad"));
  // The connection still works afterwards: echo one more transfer.
  size_t got = 0;
  s = ep.recv(c, mr, buf.data(), 1 << 20, &got);
  if (s.ok()) s = ep.send(c, mr, buf.data(), got);
  say("AFTER " + s.to_string());
  line_in();
  return 0;
}

int role_target(Endpoint& ep, ConnId c, size_t size, uint64_t seed) {
  std::vector<uint8_t> region(size);
  fill_pattern(region.data(), size, seed);
  MrId mr;
  if (!ep.reg(region.data(), size, &mr).ok()) return 2;
  for (;;) {
    std::istringstream cmd(line_in());
    std::string op;
    cmd >> op;
    if (op == "quit" || op.empty()) return 0;
    if (op == "adv") {
      size_t off = 0, len = 0;
      cmd >> off >> len;
      FifoItem item;
      Status s = ep.advertise(c, mr, region.data() + off, len, &item);
      say(s.ok() ? "ITEM " + to_hex(item.bytes, 64) : "ITEM error " + s.to_string());
    } else if (op == "check") {
      size_t off = 0, len = 0, start = 0;
      uint64_t sd = 0;
      cmd >> off >> len >> sd >> start;
      // The application learns that a peer's writes landed from a
      // notification (sent after they completed): that is also the
      // happens-before edge with the progress thread that wrote the bytes.
      bool synced = false;
      for (int i = 0; i < 2000 && !synced; ++i) {
        synced = !ep.get_notifications().empty();
        if (!synced) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (!synced) { say("CHECK no sync notification"); continue; }
      size_t bad = check_pattern(region.data() + off, len, sd, start);
      say(bad == kPatternMatches ? "CHECK ok" : "CHECK bad " + std::to_string(bad));
    } else if (op == "dereg") {
      say("DEREG " + ep.dereg(mr).to_string());
    } else if (op == "cpu") {  // CPU time of this process so far, in microseconds
      timespec t{};
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
      say("CPU " + std::to_string(t.tv_sec * 1000000L + t.tv_nsec / 1000));
    } else if (op == "waitnotif") {
      size_t off = 0, len = 0;
      uint64_t sd = 0;
      cmd >> off >> len >> sd;
      std::vector<Notification> got;
      for (int i = 0; i < 2000 && got.empty(); ++i) {
        got = ep.get_notifications();
        if (got.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (got.empty()) { say("NOTIF none"); continue; }
      // Checked at the moment the notification is visible.
      size_t bad = check_pattern(region.data() + off, len, sd);
      say("NOTIF " + got[0].name + " " + got[0].msg + " " + (bad == kPatternMatches ? "ok" : "bad") + " count=" +
          std::to_string(got.size()));
    }
  }
}

// writer: reads "go <FifoItem hex> <size>", then writes size bytes into that
// item again and again until killed.
int role_writer(Endpoint& ep, ConnId c) {
  std::istringstream cmd(line_in());
  std::string op, hex;
  size_t size = 0;
  cmd >> op >> hex >> size;
  FifoItem item;
  if (op != "go" || size == 0 || !from_hex(hex, item.bytes, 64)) return 2;
  std::vector<uint8_t> buf(size);
  fill_pattern(buf.data(), size, 5);
  MrId mr;
  if (!ep.reg(buf.data(), size, &mr).ok()) return 2;
  say("WRITING");
  for (;;) {
    Status s = ep.write(c, mr, buf.data(), size, item);
    if (!s.ok()) { say("ERROR " + s.to_string()); return 1; }
  }
}

int role_sink(Endpoint& ep, ConnId c) {
  std::vector<uint8_t> buf(64u << 20);
  MrId mr;
  if (!ep.reg(buf.data(), buf.size(), &mr).ok()) return 2;
  Status s = ep.recv(c, mr, buf.data(), buf.size());
  say("GOT1 " + s.to_string());
  XferId id;
  (void)ep.recv_async(c, mr, buf.data(), buf.size(), &id);
  line_in();  // killed while waiting here
  return 0;
}

int role_notify_recv(Endpoint& ep, ConnId c, size_t k, size_t size, uint64_t seed) {
  std::vector<uint8_t> buf(k * size + 1);
  MrId mr;
  if (!ep.reg(buf.data(), buf.size(), &mr).ok()) return 2;
  std::vector<XferId> ids(k);
  for (size_t i = 0; i < k; ++i) (void)ep.recv_async(c, mr, &buf[i * size], size, &ids[i]);
  std::vector<Notification> got;
  for (int i = 0; i < 20000 && got.empty(); ++i) {
    got = ep.get_notifications();
    if (got.empty()) std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  if (got.empty()) { say("RESULT no notification"); return 1; }
  // Visible notification => every earlier incoming transfer is complete.
  for (size_t i = 0; i < k; ++i) {
    Status s = ep.poll_async(ids[i]);
    if (!s.ok()) { say("RESULT recv " + std::to_string(i) + " not done at notification: " + s.to_string()); return 1; }
    if (check_pattern(&buf[i * size], size, seed + i) != kPatternMatches) { say("RESULT bad data " + std::to_string(i)); return 1; }
  }
  say("RESULT ok " + got[0].name + " " + got[0].msg);
  line_in();
  return 0;
}

// Receives `iters` transfers of `size` bytes, keeping `depth` posted.
int role_recvloop(Endpoint& ep, ConnId c, size_t size, size_t iters, size_t depth) {
  std::vector<uint8_t> buf(std::max<size_t>(size * depth, 1));
  MrId mr;
  if (!ep.reg(buf.data(), buf.size(), &mr).ok()) return 2;
  std::vector<XferId> ids(depth);
  size_t posted = 0, done = 0;
  while (done < iters) {
    while (posted < iters && posted - done < depth) {
      if (!ep.recv_async(c, mr, &buf[(posted % depth) * size], size, &ids[posted % depth]).ok()) return 1;
      ++posted;
    }
    Status s = ep.wait(ids[done % depth], 60000);
    if (!s.ok()) { say("ERROR " + s.to_string()); return 1; }
    ++done;
  }
  say("DONE");
  line_in();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  std::string role = argv[1];
  auto arg = [&](int i) -> uint64_t { return i < argc ? std::strtoull(argv[i], nullptr, 10) : 0; };
  // flood <port> <silent> <garbage> <partial> <slowloris> <give_up_ms>: no
  // endpoint, only raw connections (handshake_flood.h).
  if (role == "flood") {
    FloodCounts counts{static_cast<int>(arg(3)), static_cast<int>(arg(4)), static_cast<int>(arg(5)),
                       static_cast<int>(arg(6))};
    return run_handshake_flood(static_cast<uint16_t>(arg(2)), counts, static_cast<int>(arg(7)));
  }
  int gpu = std::getenv("PEER_GPU") ? std::atoi(std::getenv("PEER_GPU")) : 0;
  std::unique_ptr<Endpoint> ep;
  Status s = make_endpoint(&ep, gpu);
  if (!s.ok()) { say("ERROR create " + s.to_string()); return 2; }
  say("READY " + std::to_string(ep->local_info().port));
  ConnId c = 0;
  s = ep->accept(&c, nullptr, role == "accept_only" ? 3000 : 15000);
  if (role == "accept_only") {
    say("ACCEPT " + s.to_string());
    say("HS " + ep->last_handshake_error().to_string());
    line_in();
    return 0;
  }
  if (!s.ok()) { say("ERROR accept " + s.to_string()); return 2; }
  say("ACCEPTED");
  if (role == "echo") return role_echo(*ep, c, arg(2), arg(3));
  if (role == "mixed") return role_mixed(*ep, c, arg(2), arg(3));
  if (role == "small_recv") return role_small_recv(*ep, c, arg(2));
  if (role == "target") return role_target(*ep, c, arg(2), arg(3));
  if (role == "recvloop") return role_recvloop(*ep, c, arg(2), arg(3), arg(4));
  if (role == "sink") return role_sink(*ep, c);
  if (role == "writer") return role_writer(*ep, c);
  if (role == "notify_recv") return role_notify_recv(*ep, c, arg(2), arg(3), arg(4));
  say("ERROR unknown role " + role);
  return 2;
}
