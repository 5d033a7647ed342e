// tcpx-capi-bench: what NIXL sees through the C API (uccl_engine.h only),
// between two processes:
//   - the FIFO round trip: send_tx_md_vector(1 READ item) until
//     get_fifo_item(0) answers (warm: back to back; cold: after an idle gap);
//   - an N-descriptor WRITE, then READ, in NIXL's call order (md vector,
//     FIFO items, one write/read per descriptor, xfer_status until all done),
//     in GB/s, next to one two-sided transfer of the same total bytes, and
//     where its time went (md vector and FIFO items, posting, completion);
//   - the threads an engine and a connection (with its listener) add.
// Completions are polled every kPollNs (not NIXL's 1 ms): the figures are the
// engine's, not the poller's.
//
//   server: tcpx-capi-bench --server                 (prints "META ip:port?gpu")
//   client: tcpx-capi-bench --client ip:port?gpu [--descs 1000] [--desc-size 64K]
//                           [--rounds 5] [--fifo 1000] [--cold 20] [--gap-ms 20]
// The client drives the server with two-sided text messages (uccl_engine_send
// / uccl_engine_recv): "HELLO bytes" -> "BUF addr", "RECV bytes" (then the
// data) -> "GOT", "BYE".
#include <sys/prctl.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "measure.h"
#include "options.h"
#include "uccl_engine.h"

namespace {

using Clock = std::chrono::steady_clock;
using tcpx::bench::percentile;
using tcpx::bench::thread_count;

constexpr long kPollNs = 10000;
constexpr auto kDeadline = std::chrono::seconds(60);
constexpr size_t kCtrlBytes = 256;  // one text message

void nap() { std::this_thread::sleep_for(std::chrono::nanoseconds(kPollNs)); }
double us_since(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

uint8_t pattern(size_t j) { return static_cast<uint8_t>(j * 251 + (j >> 16) + 1); }

struct Registered {
  uint8_t* data = nullptr;
  size_t size = 0;
  uccl_mr_t* mr = nullptr;
  bool init(uccl_engine_t* e, size_t n) {
    size = n;
    data = static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096));
    if (data == nullptr) return false;
    std::memset(data, 0, n);
    mr = uccl_engine_reg(e, reinterpret_cast<uintptr_t>(data), n);
    return mr != nullptr;
  }
  void release() {
    if (mr) uccl_engine_mr_destroy(mr);
    std::free(data);
  }
};

// Polls xfer_status until every id succeeded; false on failure or deadline.
bool wait_all(uccl_conn_t* conn, const std::vector<uint64_t>& ids) {
  auto t0 = Clock::now();
  for (uint64_t id : ids) {
    while (uccl_engine_xfer_status(conn, id) != 1) {
      char why[256] = "";
      int rc = uccl_engine_xfer_result(conn, id, why, sizeof(why));
      if (rc < 0) return std::fprintf(stderr, "transfer %llu failed: %d %s\n", (unsigned long long)id, rc, why), false;
      if (Clock::now() - t0 > kDeadline) return std::fprintf(stderr, "transfer %llu timed out\n", (unsigned long long)id), false;
      nap();
    }
  }
  return true;
}

bool say(uccl_conn_t* conn, Registered& ctrl, const std::string& s) {
  char* out = reinterpret_cast<char*>(ctrl.data) + kCtrlBytes;  // the second half sends
  std::snprintf(out, kCtrlBytes, "%s", s.c_str());
  uint64_t id;
  return uccl_engine_send(conn, ctrl.mr, out, kCtrlBytes, &id) == 0 && wait_all(conn, {id});
}

bool hear(uccl_conn_t* conn, Registered& ctrl, std::string* s) {
  char* in = reinterpret_cast<char*>(ctrl.data);
  std::memset(in, 0, kCtrlBytes);
  if (uccl_engine_recv(conn, ctrl.mr, in, kCtrlBytes) != 0) return false;
  in[kCtrlBytes - 1] = 0;
  *s = in;
  return true;
}

void print_threads(const char* who, int before, int engine, int connected) {
  std::printf("capi %s threads: %d before the engine, %d after creating it, %d with one connection (listener started)\n",
              who, before, engine, connected);
}

int run_server() {
  int t0 = thread_count();
  uccl_engine_t* engine = uccl_engine_create(0, 4, false);
  if (engine == nullptr) return std::fprintf(stderr, "engine create failed\n"), 1;
  int t1 = thread_count();
  char* meta = nullptr;
  if (uccl_engine_get_metadata(engine, &meta) != 0) return 1;
  std::printf("META %s\n", meta);
  std::fflush(stdout);
  uccl_engine_free_metadata(meta);
  char ip[64];
  int gpu = -1;
  uccl_conn_t* conn = uccl_engine_accept(engine, ip, sizeof(ip), &gpu);
  if (conn == nullptr || uccl_engine_start_listener(conn) != 0) return std::fprintf(stderr, "accept failed\n"), 1;
  print_threads("server", t0, t1, thread_count());
  std::fflush(stdout);
  Registered ctrl, big;
  if (!ctrl.init(engine, 2 * kCtrlBytes)) return 1;
  int rc = 1;
  std::string line;
  while (hear(conn, ctrl, &line)) {
    unsigned long long n = 0;
    bool ok;
    if (std::sscanf(line.c_str(), "HELLO %llu", &n) == 1) {
      ok = big.data == nullptr && big.init(engine, n) &&
           say(conn, ctrl, "BUF " + std::to_string(reinterpret_cast<uintptr_t>(big.data)));
    } else if (std::sscanf(line.c_str(), "RECV %llu", &n) == 1) {
      ok = n <= big.size && uccl_engine_recv(conn, big.mr, big.data, n) == 0 && say(conn, ctrl, "GOT");
    } else {
      rc = line == "BYE" ? 0 : 1;
      break;
    }
    if (!ok) break;
  }
  if (rc != 0) std::fprintf(stderr, "server: session ended at '%s'\n", line.c_str());
  uccl_engine_conn_destroy(conn);
  ctrl.release();
  big.release();
  uccl_engine_destroy(engine);
  return rc;
}

struct ClientOptions {
  std::string meta;
  int descs = 1000;
  size_t desc_size = 64 << 10;
  int rounds = 5, fifo = 1000, cold = 20, gap_ms = 20;
};

// One FIFO round trip in microseconds; -1 on failure.
double fifo_round_trip(uccl_conn_t* conn, uint64_t remote) {
  md_t md;
  std::memset(&md, 0, sizeof(md));
  md.op = UCCL_READ;
  md.data.tx_data.data_ptr = remote;
  md.data.tx_data.data_size = 4096;
  char item[FIFO_ITEM_SIZE];
  auto t0 = Clock::now();
  if (uccl_engine_send_tx_md_vector(conn, &md, 1) != 0) return -1;
  int rc;
  while ((rc = uccl_engine_get_fifo_item(conn, 0, item)) == UCCL_IN_PROGRESS) {
    if (Clock::now() - t0 > kDeadline) return -1;
    nap();
  }
  return rc == 0 ? us_since(t0) : -1;
}

// Where one direction's time went, in microseconds: the md vector and (READ)
// every FIFO item, posting one transfer per descriptor, waiting for them all.
struct Phases {
  std::vector<double> prep, post, wait;
};

// NIXL's sequence for one direction over every descriptor; seconds, or -1.
double one_sided(uccl_conn_t* conn, bool is_read, Registered& local, size_t local_off, uint64_t remote,
                 const ClientOptions& o, Phases* phases) {
  std::vector<md_t> mds(o.descs);
  for (int i = 0; i < o.descs; ++i) {
    std::memset(&mds[i], 0, sizeof(md_t));
    mds[i].op = is_read ? UCCL_READ : UCCL_WRITE;
    mds[i].data.tx_data.data_ptr = remote + i * o.desc_size;
    mds[i].data.tx_data.data_size = o.desc_size;
  }
  std::vector<uint64_t> ids(o.descs);
  std::vector<std::array<char, FIFO_ITEM_SIZE>> items(is_read ? o.descs : 0);
  auto t0 = Clock::now();
  // prepXfer: the md vector, then (READ) every FIFO item, in order.
  if (uccl_engine_send_tx_md_vector(conn, mds.data(), mds.size()) != 0) return -1;
  for (size_t i = 0; i < items.size(); ++i) {
    int rc;
    while ((rc = uccl_engine_get_fifo_item(conn, static_cast<int>(i), items[i].data())) == UCCL_IN_PROGRESS) {
      if (Clock::now() - t0 > kDeadline) return -1;
      nap();
    }
    if (rc != 0) return std::fprintf(stderr, "FIFO item %zu: %d\n", i, rc), -1;
  }
  const auto posting = Clock::now();
  // postXfer: one read or write per descriptor.
  for (int i = 0; i < o.descs; ++i) {
    uint8_t* at = local.data + local_off + i * o.desc_size;
    int rc = is_read ? uccl_engine_read(conn, local.mr, at, o.desc_size, items[i].data(), &ids[i])
                     : uccl_engine_write(conn, local.mr, at, o.desc_size, &ids[i]);
    if (rc != 0) return std::fprintf(stderr, "%s %d: %d\n", is_read ? "read" : "write", i, rc), -1;
  }
  const auto waiting = Clock::now();
  if (!wait_all(conn, ids)) return -1;
  const auto end = Clock::now();
  auto us = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); };
  phases->prep.push_back(us(t0, posting));
  phases->post.push_back(us(posting, waiting));
  phases->wait.push_back(us(waiting, end));
  return us(t0, end) / 1e6;
}

// One two-sided transfer of `bytes`, until the server says it has it.
double two_sided(uccl_conn_t* conn, Registered& ctrl, Registered& local, size_t bytes) {
  std::string got;
  if (!say(conn, ctrl, "RECV " + std::to_string(bytes))) return -1;
  auto t0 = Clock::now();
  uint64_t id;
  if (uccl_engine_send(conn, local.mr, local.data, bytes, &id) != 0 || !wait_all(conn, {id})) return -1;
  if (!hear(conn, ctrl, &got) || got != "GOT") return -1;
  return us_since(t0) / 1e6;
}

void print_summary(const char* what, std::vector<double> us) {
  std::printf("capi %s: median %.1f us p99 %.1f us (n %zu)\n", what, percentile(us, 50), percentile(us, 99), us.size());
}

int run_client(const ClientOptions& o) {
  prctl(PR_SET_TIMERSLACK, 1000UL);  // our 10 us naps, not the default 50 us slack
  int t0 = thread_count();
  uccl_engine_t* engine = uccl_engine_create(0, 4, false);
  if (engine == nullptr) return std::fprintf(stderr, "engine create failed\n"), 1;
  int t1 = thread_count();
  size_t colon = o.meta.find(':'), q = o.meta.find('?');
  if (colon == std::string::npos || q == std::string::npos) return std::fprintf(stderr, "bad META\n"), 2;
  uccl_conn_t* conn = uccl_engine_connect(engine, o.meta.substr(0, colon).c_str(), std::atoi(o.meta.c_str() + q + 1),
                                          std::atoi(o.meta.substr(colon + 1, q - colon - 1).c_str()));
  if (conn == nullptr || uccl_engine_start_listener(conn) != 0) return std::fprintf(stderr, "connect failed\n"), 1;
  print_threads("client", t0, t1, thread_count());
  const size_t total = static_cast<size_t>(o.descs) * o.desc_size;
  Registered ctrl, local;  // local: what we write, then where we read it back
  std::string buf;
  uint64_t remote = 0;
  if (!ctrl.init(engine, 2 * kCtrlBytes) || !local.init(engine, 2 * total)) return 1;
  if (!say(conn, ctrl, "HELLO " + std::to_string(total)) || !hear(conn, ctrl, &buf) ||
      std::sscanf(buf.c_str(), "BUF %llu", reinterpret_cast<unsigned long long*>(&remote)) != 1)
    return std::fprintf(stderr, "no buffer from the server: '%s'\n", buf.c_str()), 1;
  for (size_t j = 0; j < total; ++j) local.data[j] = pattern(j);

  int rc = 0;
  std::vector<double> warm, cold;
  for (int i = 0; i < 50; ++i) fifo_round_trip(conn, remote);
  for (int i = 0; i < o.fifo; ++i) warm.push_back(fifo_round_trip(conn, remote));
  for (int i = 0; i < o.cold; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(o.gap_ms));
    cold.push_back(fifo_round_trip(conn, remote));
  }
  if (std::count(warm.begin(), warm.end(), -1.0) + std::count(cold.begin(), cold.end(), -1.0) > 0)
    rc = 1, std::fprintf(stderr, "a FIFO round trip failed\n");
  print_summary("fifo warm", warm);
  print_summary(("fifo cold (after " + std::to_string(o.gap_ms) + " ms idle)").c_str(), cold);

  // Round 0 warms up and checks: what we wrote comes back by READ.
  std::vector<double> w, r, s;
  Phases write_phases, read_phases;
  for (int round = 0; round <= o.rounds && rc == 0; ++round) {
    std::memset(local.data + total, 0, total);
    double tw = one_sided(conn, false, local, 0, remote, o, &write_phases);
    double tr = one_sided(conn, true, local, total, remote, o, &read_phases);
    double ts = two_sided(conn, ctrl, local, total);
    if (tw < 0 || tr < 0 || ts < 0) rc = 1, std::fprintf(stderr, "round %d failed\n", round);
    else if (std::memcmp(local.data, local.data + total, total) != 0)
      rc = 1, std::fprintf(stderr, "round %d: READ did not return what WRITE wrote\n", round);
    if (round == 0) {
      write_phases = read_phases = Phases{};
      continue;
    }
    w.push_back(total / tw / 1e9);
    r.push_back(total / tr / 1e9);
    s.push_back(total / ts / 1e9);
  }
  if (rc == 0) {
    std::string shape = std::to_string(o.descs) + "x" + tcpx::bench::format_size(o.desc_size);
    std::printf("capi write %s: %.3f GB/s (median of %d)\n", shape.c_str(), percentile(w, 50), o.rounds);
    std::printf("capi read %s: %.3f GB/s (median of %d)\n", shape.c_str(), percentile(r, 50), o.rounds);
    std::printf("capi send 1x%s: %.3f GB/s (median of %d, two-sided, same bytes)\n",
                tcpx::bench::format_size(total).c_str(), percentile(s, 50), o.rounds);
    for (auto [what, p] : {std::pair{"write", &write_phases}, std::pair{"read", &read_phases}})
      std::printf("capi phases %s %s: md vector and FIFO items %.0f us, posting %.0f us, completion %.0f us (medians)\n",
                  what, shape.c_str(), percentile(p->prep, 50), percentile(p->post, 50), percentile(p->wait, 50));
  }
  say(conn, ctrl, "BYE");
  uccl_engine_conn_destroy(conn);
  ctrl.release();
  local.release();
  uccl_engine_destroy(engine);
  return rc;
}

const char* kUsage =
    "usage: tcpx-capi-bench --server\n"
    "       tcpx-capi-bench --client IP:PORT?GPU [--descs 1000] [--desc-size 64K] [--rounds 5]\n"
    "                       [--fifo 1000] [--cold 20] [--gap-ms 20]\n";

}  // namespace

int main(int argc, char** argv) {
  ClientOptions o;
  bool server = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    auto number = [&](int* out) { return v && (*out = std::atoi(v)) > 0 && ++i; };
    bool ok = true;
    if (a == "--server") server = true;
    else if (a == "--client" && v) o.meta = argv[++i];
    else if (a == "--descs") ok = number(&o.descs);
    else if (a == "--rounds") ok = number(&o.rounds);
    else if (a == "--fifo") ok = number(&o.fifo);
    else if (a == "--cold") ok = number(&o.cold);
    else if (a == "--gap-ms") ok = number(&o.gap_ms);
    else if (a == "--desc-size" && v) ok = (o.desc_size = tcpx::bench::parse_size(argv[++i])) > 0;
    else ok = false;
    if (!ok) return std::fprintf(stderr, "bad argument '%s'\n%s", a.c_str(), kUsage), 2;
  }
  if (server == !o.meta.empty()) return std::fprintf(stderr, "%s", kUsage), 2;
  setenv("TCPX_LISTEN_ADDR", "127.0.0.1", 0);  // loopback unless told otherwise
  return server ? run_server() : run_client(o);
}
