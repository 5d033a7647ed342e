// tcpx-bench: bandwidth and latency between two processes through
// tcpx::Endpoint directly (host memory, or device memory with --mem cuda). The client drives the server through
// plans on the connection's message channel (control.h); each figure is a
// warmed-up, timed loop, and says how long it measured and how many
// transfers it counted.
//
//   server: tcpx-bench --server [--port P]            (prints its address)
//   client: tcpx-bench --client HOST:PORT --mode send|read|write [--sizes ...]
//           tcpx-bench --client HOST:PORT --latency [--sizes 8,4K]
#include <cstdio>
#include <string>

#include "measure.h"
#include "options.h"
#include "roles.h"

namespace tcpx::bench {

void ThreadCounts::print() const {
  std::printf("threads: %d before the endpoint, %d after creating it, %d with one connection\n", before,
              created, connected);
}

void print_memory(const Options& o) {
  if (o.cuda_mem) std::printf("memory: cuda, GPU %d\n", o.gpu);
  else std::printf("memory: host\n");
}

Status make_endpoint(const Options& o, std::unique_ptr<Endpoint>* ep, ThreadCounts* threads) {
  Config c;
  TCPX_RETURN_IF_ERROR(Config::from_env(&c));
  if (o.channels > 0) c.channels_per_peer = o.channels;
  if (o.server && o.port != 0) c.listen_port = o.port;
  threads->before = thread_count();
  TCPX_RETURN_IF_ERROR(Endpoint::create(o.gpu, c, ep));
  threads->created = thread_count();
  return Status::Ok();
}

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
