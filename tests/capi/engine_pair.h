// Two C API engines of this process connected to each other over loopback,
// the way NIXL's UCCL backend does it: b accepts in a thread of its own while
// a connects to b's metadata, then both ends start their listeners.
#ifndef TCPX_TESTS_CAPI_ENGINE_PAIR_H_
#define TCPX_TESTS_CAPI_ENGINE_PAIR_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "uccl_engine.h"

namespace capi_test {

// The engine's "ip:port?gpu" metadata (freed with delete[], as NIXL does).
inline std::string metadata(uccl_engine_t* e) {
  char* m = nullptr;
  EXPECT_EQ(uccl_engine_get_metadata(e, &m), 0);
  std::string s = m ? m : "";
  delete[] m;
  return s;
}

// {a's conn to b, b's accepted conn}; either is null on failure.
inline std::pair<uccl_conn_t*, uccl_conn_t*> connect_pair(uccl_engine_t* a, uccl_engine_t* b) {
  std::string m = metadata(b);
  size_t colon = m.find(':'), q = m.find('?');
  uccl_conn_t* accepted = nullptr;
  std::thread acceptor([&] {
    char ip[64];
    int gpu = -1;
    accepted = uccl_engine_accept(b, ip, sizeof(ip), &gpu);
    EXPECT_STREQ(ip, "127.0.0.1");
    EXPECT_EQ(gpu, 0);
  });
  uccl_conn_t* c = uccl_engine_connect(a, m.substr(0, colon).c_str(), std::atoi(m.substr(q + 1).c_str()),
                                       std::atoi(m.substr(colon + 1, q - colon - 1).c_str()));
  acceptor.join();
  if (c) uccl_engine_start_listener(c);
  if (accepted) uccl_engine_start_listener(accepted);
  return {c, accepted};
}

}  // namespace capi_test

#endif  // TCPX_TESTS_CAPI_ENGINE_PAIR_H_
