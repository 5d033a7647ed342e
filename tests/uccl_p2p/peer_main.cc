// uccl_p2p_peer: the target side of the two-process tests, as a NIXL agent
// (tests/uccl_p2p/nixl_agent.h) in a process of its own. It registers one
// 1 MiB buffer holding pattern(seed 7), prints
//   MD <conn_info> <addr> <hex of its 64-byte FifoItem>
// and then answers lines on stdin:
//   CHECK <seed> <len>   "OK" if the first len bytes hold pattern(seed)
//   NOTIFS <n>           "NOTIFS <count>" after waiting up to 10 s for n
//   QUIT                 tears down like NIXL and exits 0
#include <iostream>
#include <sstream>
#include <vector>

#include "nixl_agent.h"
#include "support/hex.h"
#include "support/pattern.h"

int main() {
  using namespace uccl_p2p_test;
  std::vector<uint8_t> buf(1 << 20);
  tcpx::test::fill_pattern(buf.data(), buf.size(), 7);
  NixlAgent agent("peer");
  RemoteBuffer md;
  if (!agent.ok() || !agent.register_buffer(buf.data(), buf.size(), &md)) {
    std::cout << "FAILED setup" << std::endl;
    return 1;
  }
  std::cout << "MD " << agent.conn_info() << " " << md.addr << " " << tcpx::test::to_hex(md.fifo, sizeof(md.fifo))
            << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "CHECK") {
      int seed = 0;
      size_t len = 0;
      in >> seed >> len;
      bool ok = len <= buf.size() && tcpx::test::check_pattern(buf.data(), len, seed) == tcpx::test::kPatternMatches;
      std::cout << (ok ? "OK" : "BAD") << std::endl;
    } else if (cmd == "NOTIFS") {
      size_t n = 0;
      in >> n;
      std::cout << "NOTIFS " << wait_notifs(n, 10000).size() << std::endl;
    } else if (cmd == "QUIT") {
      break;
    }
  }
  return 0;
}
