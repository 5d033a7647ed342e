// A test process acting as one NIXL agent against a capi_peer process acting
// as the other: engine, NIXL-style accept thread, an outgoing connection to
// the peer, and helpers that lay descriptors out over several registrations.
#ifndef TCPX_TESTS_CAPI_AGENT_FIXTURE_H_
#define TCPX_TESTS_CAPI_AGENT_FIXTURE_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nixl_sequence.h"
#include "support/child_process.h"
#include "support/pattern.h"
#include "uccl_engine.h"

namespace capi_test {

using tcpx::test::check_pattern;
using tcpx::test::ChildProcess;
using tcpx::test::fill_pattern;
using tcpx::test::kPatternMatches;

// Path of a helper program built beside the tests (capi_peer, the hostile
// and early-message clients).
std::string helper_path(const char* name);

// A host buffer registered on an engine (freed after deregistration).
struct LocalBuffer {
  uint8_t* data = nullptr;
  size_t size = 0;
  uccl_mr_t* mr = nullptr;
};

// Descriptor i lives in registration (i % regs) at offsets[i], the same
// offset on both sides.
struct Layout {
  std::vector<size_t> sizes;
  std::vector<int> reg_of;
  std::vector<size_t> offsets;
  std::vector<size_t> reg_sizes;
};
Layout make_layout(const std::vector<size_t>& sizes, int regs);

class AgentFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Registers a local buffer filled with pattern(seed) (or 0xEE if seed < 0).
  LocalBuffer* local_buffer(size_t size, int64_t seed);
  // Asks the peer to register buffer k; returns its address (0 on failure).
  uint64_t peer_buffer(int k, size_t size, uint32_t seed);
  // Sends CHECKS for the given lines ("k off len seed first"); true on "OK".
  bool peer_checks(const std::vector<std::string>& lines, std::string* verdict);
  // Collects the peer's notifications (waits up to ms for n of them).
  std::vector<std::string> peer_notifs(size_t n, int ms);
  // Opens one more connection from this process to the peer.
  uccl_conn_t* connect_to_peer();

  ChildProcess peer_;  // capi_peer, over its stdin/stdout
  std::string peer_meta_;
  uccl_engine_t* engine_ = nullptr;
  uccl_conn_t* conn_ = nullptr;  // this process -> peer
  std::vector<std::unique_ptr<LocalBuffer>> locals_;
  std::mutex accepted_mu_;
  std::vector<uccl_conn_t*> accepted_;  // peer -> this process
  std::vector<uccl_conn_t*> extra_conns_;
};

}  // namespace capi_test

#endif  // TCPX_TESTS_CAPI_AGENT_FIXTURE_H_
