// The parameterised fixtures of the ncclNet v7 conformance suite.
//
// The plugin under test is TCPX_NET_PLUGIN (default: the built-in
// libtcpx_net_tcp.so). Each mode (ModeParam) says which memory the data lives
// in and whether the built-in plugin is asked to bounce host receives
// (TCPX_P2P_TCP_BOUNCE_HOST=1, set for both halves).
//
// NetPairTest runs one half in this process ("driver") and the other in a
// second process ("peer"): by default the driver re-executes this binary for
// the peer; with TCPX_CONFORMANCE_ROLE=driver|peer and
// TCPX_CONFORMANCE_RENDEZVOUS=host:port the two halves are started by hand,
// on two hosts if need be (see tests/net/README.md). A third role, "victim",
// is a sacrificial process the peer half starts for tests that kill a peer.
#ifndef TCPX_TESTS_NET_HARNESS_CONFORMANCE_FIXTURE_H_
#define TCPX_TESTS_NET_HARNESS_CONFORMANCE_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "harness/memory_space.h"
#include "harness/plugin_ends.h"
#include "harness/rendezvous.h"
#include "net/nccl_net_v7.h"
#include "net/transport.h"
#include "support/child_process.h"
#include "support/status_assert.h"

// A test that depends on a promise only the built-in plugin makes skips, with
// the reason, against any other plugin (TCPX_NET_PLUGIN). Use it at the top of
// a test body so both halves of a pair test skip before they talk.
#define TCPX_SKIP_UNLESS_BUILTIN(why)                                                       \
  do {                                                                                      \
    if (!builtin())                                                                         \
      GTEST_SKIP() << "built-in plugin only: " << (why) << " (plugin under test: "          \
                   << ::tcpx::conformance::plugin_under_test() << ")";                      \
  } while (0)

namespace tcpx::conformance {

using test::ChildProcess;

enum class MemKind { kHost, kCuda };

struct ModeParam {
  const char* name;
  bool bounce_host;  // TCPX_P2P_TCP_BOUNCE_HOST=1 (built-in plugin only)
  MemKind mem;
};

// gtest prints the mode by name instead of its bytes.
inline void PrintTo(const ModeParam& m, std::ostream* os) { *os << m.name; }

// HostDirect, HostBounce, Cuda (tests/net/modes.cc).
const std::vector<ModeParam>& all_modes();
std::string mode_name(const ::testing::TestParamInfo<ModeParam>& info);

enum class Role { kDriver, kPeer, kVictim };

// Path of the plugin under test and whether it is the built-in one.
std::string plugin_under_test();
bool plugin_is_builtin(const std::string& path);
// TCPX_P2P_TCP_STRICT=1: the built-in plugin makes Google's TCPX plugin's
// choices where they differ (src/net/tcp/README.md), so tests of the built-in's
// own promises on those points skip.
bool strict_tcpx_emulation();

// Passes when `rc` refuses a call: exactly `code` for the built-in plugin
// (the contract's number); any failure code for a foreign plugin (TCPX
// returns 3 where the contract says 4 or 5 in several places).
::testing::AssertionResult refused(int rc, int code, bool exact);

// Single-process checks (properties, local bad input).
class NetModeTest : public ::testing::TestWithParam<ModeParam> {
 protected:
  void SetUp() override;
  // Sets the mode's environment, loads the plugin, and skips modes this host
  // or plugin cannot run.
  void prepare_mode();

  const ncclNet_v7_t* net() const { return &transport_->v(); }
  bool builtin() const { return builtin_; }
  // Whether a receive of this mode lands in a bounce buffer and is described
  // by loadMeta: the plugin's device type is UNPACK (TCPX, the built-in), and
  // the memory is CUDA or host memory in the built-in's bounce mode. A HOST
  // device type (aws-ofi-nccl) receives everything in place.
  bool expects_bounce() const {
    return unpack_device_ && (GetParam().mem == MemKind::kCuda || (GetParam().bounce_host && builtin_));
  }
  int mem_type() const { return GetParam().mem == MemKind::kCuda ? NCCL_PTR_CUDA : NCCL_PTR_HOST; }
  // Where this mode's buffers live.
  MemorySpace& space() const { return *space_; }
  ::testing::AssertionResult refused(int rc, int code) const {
    return conformance::refused(rc, code, builtin_);
  }
  int dev() const { return 0; }

  std::shared_ptr<net::Transport> transport_;
  bool builtin_ = false;
  bool unpack_device_ = true;  // device 0 reports NCCL_NET_DEVICE_UNPACK
  MemorySpace* space_ = &host_space();
};

class NetPairTest : public NetModeTest {
 protected:
  void SetUp() override;
  void TearDown() override;

  Role role() const { return role_; }
  bool is_peer() const { return role_ == Role::kPeer; }
  bool is_victim() const { return role_ == Role::kVictim; }
  RendezvousConnection& rv() { return rv_; }

  // Driver: listen, ship the handle over `via`, accept the partner's connect.
  Status open_recv_end(RecvEnd* out, RendezvousConnection* via = nullptr);
  // Partner of open_recv_end: receive the handle, connect.
  Status open_send_end(SendEnd* out, RendezvousConnection* via = nullptr);

  // Peer only: starts a victim process running this same test.
  Status spawn_victim(ChildProcess* out);
  // Driver only: accepts the victim's rendezvous connection.
  Status accept_victim(RendezvousConnection* out);
  // Victim only: the victim's connection is rv().

 private:
  std::string full_test_name() const;
  Role role_ = Role::kDriver;
  RendezvousConnection rv_;
  ChildProcess peer_;  // driver in local mode only
  bool connected_ = false;
};

}  // namespace tcpx::conformance

#endif  // TCPX_TESTS_NET_HARNESS_CONFORMANCE_FIXTURE_H_
