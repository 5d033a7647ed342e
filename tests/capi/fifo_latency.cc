// Measures the FIFO round trip NIXL depends on: send_tx_md_vector(1 READ
// item) until get_fifo_item(0) returns the answer, against a capi_peer
// process. Two cases:
//   warm: back to back, the engine threads are awake;
//   cold: after an idle gap (default 20 ms), every thread on both sides has
//         gone to sleep, as between two NIXL transfers.
// Prints median / p99 / max in microseconds, and how many round trips missed
// NIXL's budget (5 polls 1 ms apart: about 4 ms).
//
//   capi_fifo_latency [warm_iterations=2000] [gap_ms=20] [cold_iterations=warm/10]
// Not a test (its figures depend on the machine); run it on an idle host.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "peer_process.h"
#include "uccl_engine.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Summary {
  double median_us, p99_us, max_us;
  int over_budget;
};

Summary summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  Summary s{};
  s.median_us = us[us.size() / 2];
  s.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  s.max_us = us.back();
  s.over_budget = static_cast<int>(std::count_if(us.begin(), us.end(), [](double v) { return v > 4000; }));
  return s;
}

// One round trip; -1 when the answer did not come within a second.
double round_trip_us(uccl_conn_t* conn, uint64_t remote) {
  md_t md;
  std::memset(&md, 0, sizeof(md));
  md.op = UCCL_READ;
  md.data.tx_data.data_ptr = remote;
  md.data.tx_data.data_size = 4096;
  char item[FIFO_ITEM_SIZE];
  auto t0 = Clock::now();
  if (uccl_engine_send_tx_md_vector(conn, &md, 1) != 0) return -1;
  // Poll finely (20 us) so the figure is the engine's latency, not ours.
  while (uccl_engine_get_fifo_item(conn, 0, item) == UCCL_IN_PROGRESS) {
    if (Clock::now() - t0 > std::chrono::seconds(1)) return -1;
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
  int gap_ms = argc > 2 ? std::atoi(argv[2]) : 20;
  int cold_iterations = argc > 3 ? std::atoi(argv[3]) : iterations / 10 + 1;
  setenv("TCPX_LISTEN_ADDR", "127.0.0.1", 0);
  capi_test::PeerProcess peer;
  std::string why, line;
  if (!peer.start({capi_test::helper_path("capi_peer")}, &why) || !peer.expect("META ", &line, 30000)) {
    std::fprintf(stderr, "peer did not start: %s\n", why.c_str());
    return 1;
  }
  std::string meta = line.substr(5);
  peer.send("REG 1 65536 7");
  if (!peer.expect("BUF ", &line, 30000)) return 1;
  uint64_t remote = 0;
  int k = 0;
  std::istringstream(line.substr(4)) >> k >> remote;

  uccl_engine_t* engine = uccl_engine_create(0, 4, false);
  size_t colon = meta.find(':'), q = meta.find('?');
  uccl_conn_t* conn = engine == nullptr ? nullptr
                      : uccl_engine_connect(engine, meta.substr(0, colon).c_str(),
                                            std::atoi(meta.substr(q + 1).c_str()),
                                            std::atoi(meta.substr(colon + 1, q - colon - 1).c_str()));
  if (conn == nullptr || uccl_engine_start_listener(conn) != 0) {
    std::fprintf(stderr, "connect failed\n");
    return 1;
  }
  for (int i = 0; i < 50; ++i) round_trip_us(conn, remote);  // warm-up
  std::vector<double> warm, cold;
  int lost = 0;
  for (int i = 0; i < iterations; ++i) {
    double us = round_trip_us(conn, remote);
    if (us < 0) ++lost; else warm.push_back(us);
  }
  for (int i = 0; i < cold_iterations; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
    double us = round_trip_us(conn, remote);
    if (us < 0) ++lost; else cold.push_back(us);
  }
  if (warm.empty() || cold.empty()) {
    std::fprintf(stderr, "no round trip completed (%d lost)\n", lost);
    return 1;
  }
  Summary w = summarize(warm), c = summarize(cold);
  std::printf("FIFO round trip warm: n=%zu median %.0f us  p99 %.0f us  max %.0f us  >4ms %d\n",
              warm.size(), w.median_us, w.p99_us, w.max_us, w.over_budget);
  std::printf("FIFO round trip cold (after %d ms idle): n=%zu median %.0f us  p99 %.0f us  max %.0f us  >4ms %d\n",
              gap_ms, cold.size(), c.median_us, c.p99_us, c.max_us, c.over_budget);
  std::printf("lost (no answer within 1 s): %d\n", lost);
  uccl_engine_conn_destroy(conn);
  peer.send("EXIT");
  peer.wait_exit(20000);
  uccl_engine_destroy(engine);
  return lost == 0 ? 0 : 1;
}
