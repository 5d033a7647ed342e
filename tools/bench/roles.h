// tcpx-bench's two processes, and the endpoint setup they share.
#ifndef TCPX_TOOLS_BENCH_ROLES_H_
#define TCPX_TOOLS_BENCH_ROLES_H_

#include <memory>

#include "options.h"
#include "tcpx/endpoint.h"

namespace tcpx::bench {

// Threads of the process before the endpoint, after creating it, and once it
// has its one connection: what an endpoint (and a connection) costs.
struct ThreadCounts {
  int before = 0, created = 0, connected = 0;
  void print() const;
};

// Creates the endpoint from TCPX_* plus the options; fills before/created.
Status make_endpoint(const Options& o, std::unique_ptr<Endpoint>* ep, ThreadCounts* threads);

// "memory: host" or "memory: cuda, GPU g": where this side's buffer lives.
void print_memory(const Options& o);

int run_server(const Options& o);
int run_client(const Options& o);

}  // namespace tcpx::bench

#endif  // TCPX_TOOLS_BENCH_ROLES_H_
