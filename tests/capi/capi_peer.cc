// The other process of the C API tests: a NIXL-like agent driven by line
// commands on stdin, answering on stdout. It uses only uccl_engine.h.
//
// At start: creates an engine, prints "META <ip:port?gpu>", and runs an
// accept thread like NIXL's (accept + start_listener forever).
// Commands (one per line):
//   REG k size seed          allocate buffer k, fill it with the pattern, register
//                            -> "BUF k <address>"
//   DEREG k                  uccl_engine_mr_destroy (memory kept) -> "DONE"
//   CHECKS n                 then n lines "k off len seed first": buffer k at
//                            off holds pattern(seed) from `first` -> "OK" | "BAD ..."
//   NOTIFS n ms              wait up to ms for n notifications (get_notifs())
//                            -> "NOTIF name msg" each, then "NOTIFS_END count"
//   CONNECT meta             connect + start_listener -> "CONNECTED" | "FAILED"
//   NIXL READ|WRITE n notif  then n lines "k off remote size": run NIXL's
//                            sequence on the outgoing conn -> "NIXL_DONE ok" | "NIXL_DONE fail why"
//   DESTROY_ACCEPTED         conn_destroy every accepted conn -> "DONE"
//   EXIT                     destroy the engine and exit 0
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nixl_sequence.h"
#include "support/pattern.h"
#include "uccl_engine.h"

namespace {

struct Buffer {
  uint8_t* data = nullptr;
  size_t size = 0;
  uccl_mr_t* mr = nullptr;
};

std::mutex g_conns_mu;
std::vector<uccl_conn_t*> g_accepted;

void say(const std::string& line) {
  std::cout << line << std::endl;  // endl flushes: the test reads line by line
}

void accept_loop(uccl_engine_t* engine) {
  for (;;) {
    char ip[256];
    int gpu = -1;
    uccl_conn_t* conn = uccl_engine_accept(engine, ip, sizeof(ip), &gpu);
    if (conn == nullptr) continue;  // a failed handshake: wait for the next
    uccl_engine_start_listener(conn);
    std::lock_guard<std::mutex> lk(g_conns_mu);
    g_accepted.push_back(conn);
  }
}

}  // namespace

int main() {
  setenv("TCPX_LISTEN_ADDR", "127.0.0.1", 0);
  uccl_engine_t* engine = uccl_engine_create(0, 4, false);
  if (engine == nullptr) {
    say("FATAL create");
    return 2;
  }
  char* meta = nullptr;
  if (uccl_engine_get_metadata(engine, &meta) != 0) {
    say("FATAL metadata");
    return 2;
  }
  say(std::string("META ") + meta);
  delete[] meta;
  // Detached like NIXL's: it is still inside accept when the engine dies.
  std::thread(accept_loop, engine).detach();

  std::map<int, Buffer> bufs;
  uccl_conn_t* out_conn = nullptr;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "REG") {
      int k;
      size_t size;
      uint32_t seed;
      in >> k >> size >> seed;
      Buffer b;
      b.size = size;
      b.data = static_cast<uint8_t*>(aligned_alloc(4096, (size + 4095) / 4096 * 4096));
      tcpx::test::fill_pattern(b.data, size, seed);
      b.mr = uccl_engine_reg(engine, reinterpret_cast<uintptr_t>(b.data), size);
      if (b.mr == nullptr) {
        say("FAILED reg");
        continue;
      }
      bufs[k] = b;
      say("BUF " + std::to_string(k) + " " +
          std::to_string(reinterpret_cast<uintptr_t>(b.data)));
    } else if (cmd == "DEREG") {
      int k;
      in >> k;
      uccl_engine_mr_destroy(bufs[k].mr);
      bufs[k].mr = nullptr;
      say("DONE");
    } else if (cmd == "CHECKS") {
      int n;
      in >> n;
      std::string verdict = "OK";
      for (int i = 0; i < n; ++i) {
        std::getline(std::cin, line);
        std::istringstream cl(line);
        int k;
        size_t off, len;
        uint32_t seed;
        uint64_t first;
        cl >> k >> off >> len >> seed >> first;
        size_t bad = tcpx::test::check_pattern(bufs[k].data + off, len, seed, first);
        if (bad != tcpx::test::kPatternMatches && verdict == "OK")
          verdict = "BAD check " + std::to_string(i) + " byte " + std::to_string(bad);
      }
      say(verdict);
    } else if (cmd == "NOTIFS") {
      size_t n;
      int ms;
      in >> n >> ms;
      std::vector<notify_msg_t> got;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
        auto more = uccl_engine_get_notifs();
        got.insert(got.end(), more.begin(), more.end());
        if (got.size() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      for (const auto& m : got) say(std::string("NOTIF ") + m.name + " " + m.msg);
      say("NOTIFS_END " + std::to_string(got.size()));
    } else if (cmd == "CONNECT") {
      std::string m;
      in >> m;
      size_t colon = m.find(':'), q = m.find('?');
      out_conn = uccl_engine_connect(engine, m.substr(0, colon).c_str(),
                                     std::stoi(m.substr(q + 1)),
                                     std::stoi(m.substr(colon + 1, q - colon - 1)));
      if (out_conn == nullptr) {
        say("FAILED");
        continue;
      }
      uccl_engine_start_listener(out_conn);
      say("CONNECTED");
    } else if (cmd == "NIXL") {
      std::string op, notif;
      int n;
      in >> op >> n >> notif;
      std::vector<capi_test::Descriptor> descs;
      for (int i = 0; i < n; ++i) {
        std::getline(std::cin, line);
        std::istringstream dl(line);
        int k;
        size_t off, size;
        uint64_t remote;
        dl >> k >> off >> remote >> size;
        descs.push_back({bufs[k].mr, bufs[k].data + off, remote, size});
      }
      auto r = capi_test::run_nixl_sequence(out_conn, op == "READ", descs, "peer",
                                            notif == "-" ? "" : notif, 60000);
      say(r.ok ? "NIXL_DONE ok" : "NIXL_DONE fail " + r.error);
    } else if (cmd == "DESTROY_ACCEPTED") {
      std::vector<uccl_conn_t*> conns;
      {
        std::lock_guard<std::mutex> lk(g_conns_mu);
        conns.swap(g_accepted);
      }
      for (auto* c : conns) uccl_engine_conn_destroy(c);
      say("DONE");
    } else if (cmd == "EXIT") {
      break;
    } else if (!cmd.empty()) {
      say("UNKNOWN " + cmd);
    }
  }
  if (out_conn != nullptr) uccl_engine_conn_destroy(out_conn);
  {
    std::lock_guard<std::mutex> lk(g_conns_mu);
    for (auto* c : g_accepted) uccl_engine_conn_destroy(c);
    g_accepted.clear();
  }
  for (auto& [k, b] : bufs) {
    uccl_engine_mr_destroy(b.mr);
    free(b.data);
  }
  uccl_engine_destroy(engine);
  say("BYE");
  return 0;
}
