// The peer role of tcpx-soak (a process the server starts, kills, freezes
// and replaces): connects to the server, drives `ops` random operations
// (soak_ops.h), checks every byte that lands here, says goodbye and exits 0.
// Any error or bad byte: "fail ..." to the server when possible, exit 1.
#ifndef TCPX_TESTS_SOAK_SOAK_PEER_H_
#define TCPX_TESTS_SOAK_SOAK_PEER_H_

#include <cstdint>

namespace tcpx::soak {

int run_peer(uint16_t server_port, uint64_t seed, uint64_t ops);

}  // namespace tcpx::soak

#endif  // TCPX_TESTS_SOAK_SOAK_PEER_H_
