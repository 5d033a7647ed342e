// engine_gpu_peer: the second process of the GPU engine tests.
//   engine_gpu_peer <host|gpu> <region_bytes>
// Creates a loopback endpoint on GPU 0 (PEER_GPU overrides), allocates one
// region of that kind, registers it, prints "READY <port>", accepts one
// connection ("ACCEPTED") and serves commands from stdin, one per line:
//   echo <off> <size> <seed>   receive size bytes at region+off, check them
//                              (and the guard bytes around them), send them
//                              back from there; prints "ECHO ok" or why not
//   adv <off> <len> <seed>     set the region to 0xEE, fill [off, off+len)
//                              with the pattern of seed (0: leave it), and
//                              advertise it: "ITEM <hex>"
//   check <off> <len> <seed>   after the next notification (it follows the
//                              peer's writes), check [off, off+len):
//                              "CHECK ok" or why not
//   burst <count> <size> <seed>  fill [0, count*size) with the pattern of
//                              seed and send it as count messages of size
//                              bytes, all posted before any is waited for:
//                              "BURST ok" or why not
//   advn <off> <size> <count>  set the region to 0xEE and advertise count
//                              adjacent pieces of size bytes from off: one
//                              "ITEM <hex>" line each
//   quit
// Failures that end the peer are "ERROR ..." lines.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../unpack/asan_cuda_options.h"
#include "device_memory.h"
#include "test_util.h"

using namespace tcpx;
using namespace tcpx::gputest;

namespace {

constexpr uint8_t kGuard = 0xEE;
constexpr size_t kGuardBytes = 64;

void say(const std::string& s) { std::cout << s << std::endl; }

std::string do_echo(Endpoint& ep, ConnId c, MrId mr, Region& region, size_t off, size_t size, uint64_t seed) {
  if (off + size > region.size()) return "echo past the region";
  if (std::string e = region.set(kGuard); !e.empty()) return e;
  size_t got = 0;
  Status s = ep.recv(c, mr, region.data() + off, size, &got);
  if (!s.ok()) return "recv failed: " + s.to_string();
  if (got != size) return "received " + std::to_string(got) + " bytes, expected " + std::to_string(size);
  std::string verdict = region.check(off, size, seed, kGuardBytes, kGuard);
  // Echo even bad data, so the test's own receive completes and it can report.
  s = ep.send(c, mr, region.data() + off, size);
  if (!s.ok()) return "send back failed: " + s.to_string();
  return verdict.empty() ? "ok" : "received data wrong: " + verdict;
}

std::string do_burst(Endpoint& ep, ConnId c, MrId mr, Region& region, size_t count, size_t size, uint64_t seed) {
  if (count * size > region.size()) return "burst past the region";
  if (std::string e = region.fill_pattern(0, count * size, seed); !e.empty()) return e;
  std::vector<XferId> ids(count);
  for (size_t i = 0; i < count; ++i) {
    Status s = ep.send_async(c, mr, region.data() + i * size, size, &ids[i]);
    if (!s.ok()) return "send_async " + std::to_string(i) + ": " + s.to_string();
  }
  for (size_t i = 0; i < count; ++i) {
    Status s = ep.wait(ids[i], 60000);
    if (!s.ok()) return "send " + std::to_string(i) + ": " + s.to_string();
  }
  return "ok";
}

std::string do_check(Endpoint& ep, const Region& region, size_t off, size_t len, uint64_t seed) {
  // The notification is how this application learns the writes completed.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ep.get_notifications().empty()) {
    if (std::chrono::steady_clock::now() > deadline) return "no notification within 30 s";
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::string v = region.check(off, len, seed, kGuardBytes, kGuard);
  return v.empty() ? "ok" : v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    say("ERROR usage: engine_gpu_peer <host|gpu> <region_bytes>");
    return 2;
  }
  Kind kind = std::string(argv[1]) == "gpu" ? Kind::kGpu : Kind::kHost;
  size_t region_bytes = std::strtoull(argv[2], nullptr, 10);
  int gpu = std::getenv("PEER_GPU") ? std::atoi(std::getenv("PEER_GPU")) : 0;
  if (kind == Kind::kGpu) {
    if (std::string why = gpu_unavailable_reason(); !why.empty()) {
      say("ERROR no GPU: " + why);
      return 2;
    }
  }
  Region region;
  std::string why;
  if (!region.allocate(kind, region_bytes, &why)) {
    say("ERROR allocate: " + why);
    return 2;
  }
  std::unique_ptr<Endpoint> ep;
  Status s = test::make_endpoint(&ep, gpu);
  if (!s.ok()) {
    say("ERROR create " + s.to_string());
    return 2;
  }
  MrId mr = 0;
  s = ep->reg(region.data(), region.size(), &mr);
  if (!s.ok()) {
    say("ERROR reg " + s.to_string());
    return 2;
  }
  say("READY " + std::to_string(ep->local_info().port));
  ConnId c = 0;
  s = ep->accept(&c, nullptr, 30000);
  if (!s.ok()) {
    say("ERROR accept " + s.to_string());
    return 2;
  }
  say("ACCEPTED");
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream cmd(line);
    std::string op;
    size_t off = 0, len = 0;
    uint64_t seed = 0;
    cmd >> op >> off >> len >> seed;
    if (op == "quit") break;
    if (op == "echo") {
      say("ECHO " + do_echo(*ep, c, mr, region, off, len, seed));
    } else if (op == "adv") {
      std::string e = region.set(kGuard);
      if (e.empty() && seed != 0) e = region.fill_pattern(off, len, seed);
      FifoItem item{};
      if (e.empty()) {
        s = ep->advertise(c, mr, region.data() + off, len, &item);
        if (!s.ok()) e = s.to_string();
      }
      say(e.empty() ? "ITEM " + test::to_hex(item.bytes, sizeof item.bytes) : "ITEM error " + e);
    } else if (op == "burst") {
      say("BURST " + do_burst(*ep, c, mr, region, off, len, seed));
    } else if (op == "advn") {
      const size_t count = seed;
      std::string e = region.set(kGuard);
      if (e.empty() && off + count * len > region.size()) e = "advn past the region";
      for (size_t i = 0; i < count && e.empty(); ++i) {
        FifoItem item{};
        s = ep->advertise(c, mr, region.data() + off + i * len, len, &item);
        if (!s.ok()) e = s.to_string();
        else say("ITEM " + test::to_hex(item.bytes, sizeof item.bytes));
      }
      if (!e.empty()) say("ITEM error " + e);
    } else if (op == "check") {
      say("CHECK " + do_check(*ep, region, off, len, seed));
    } else {
      say("ERROR unknown command '" + line + "'");
    }
  }
  return 0;
}
