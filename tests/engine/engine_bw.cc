// engine_bw: two-process loopback bandwidth of the engine, for choosing the
// default chunk size and channel count (not a test). TCPX_* variables apply
// to both processes.
//   engine_bw send|write|read <size> <iters> [depth]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "test_util.h"

using namespace tcpx;
using namespace tcpx::test;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: engine_bw send|write|read <size> <iters> [depth]\n");
    return 2;
  }
  std::string mode = argv[1];
  size_t size = std::strtoull(argv[2], nullptr, 10);
  size_t iters = std::strtoull(argv[3], nullptr, 10);
  size_t depth = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 8;
  set_test_env(std::getenv("BOUNCE") != nullptr);
  std::unique_ptr<Endpoint> ep;
  Status s = make_endpoint(&ep);
  if (!s.ok()) { std::fprintf(stderr, "%s\n", s.to_string().c_str()); return 1; }
  ChildProcess peer;
  if (mode == "send") s = start_engine_peer(&peer, "recvloop", {argv[2], argv[3], std::to_string(depth)});
  else s = start_engine_peer(&peer, "target", {std::to_string(size * depth), "1"});
  if (!s.ok()) { std::fprintf(stderr, "%s\n", s.to_string().c_str()); return 1; }
  ConnId c;
  s = ep->connect("127.0.0.1", 0, static_cast<uint16_t>(std::stoi(peer.expect("READY "))), &c);
  if (!s.ok()) { std::fprintf(stderr, "%s\n", s.to_string().c_str()); return 1; }
  peer.expect("ACCEPTED");
  std::vector<uint8_t> buf(size * depth);
  MrId mr;
  s = ep->reg(buf.data(), buf.size(), &mr);
  if (!s.ok()) { std::fprintf(stderr, "%s\n", s.to_string().c_str()); return 1; }
  std::vector<FifoItem> items(depth);
  if (mode != "send") {
    for (size_t i = 0; i < depth; ++i) {
      if (!peer.write_line("adv " + std::to_string(i * size) + " " + std::to_string(size)).ok()) return 1;
      from_hex(peer.expect("ITEM "), items[i].bytes, 64);
    }
  }
  std::vector<XferId> ids(depth);
  auto t0 = std::chrono::steady_clock::now();
  size_t posted = 0, done = 0;
  while (done < iters) {
    while (posted < iters && posted - done < depth) {
      size_t k = posted % depth;
      if (mode == "send") s = ep->send_async(c, mr, &buf[k * size], size, &ids[k]);
      else if (mode == "write") s = ep->write_async(c, mr, &buf[k * size], size, items[k], &ids[k]);
      else s = ep->read_async(c, mr, &buf[k * size], size, items[k], &ids[k]);
      if (!s.ok()) { std::fprintf(stderr, "%s\n", s.to_string().c_str()); return 1; }
      ++posted;
    }
    s = ep->wait(ids[done % depth], 60000);
    if (!s.ok()) { std::fprintf(stderr, "%s\n", s.to_string().c_str()); return 1; }
    ++done;
  }
  if (mode == "send") peer.expect("DONE");
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s size=%zu iters=%zu depth=%zu: %.3f GB/s (%.1f us/op)  [%s]\n", mode.c_str(), size, iters, depth,
              static_cast<double>(size) * iters / sec / 1e9, sec * 1e6 / iters, ep->describe_path().c_str());
  (void)peer.write_line("quit");  // it exits on EOF as well
  return 0;
}
