#include "harness/conformance_fixture.h"

#include <cstdlib>
#include <mutex>

namespace tcpx::conformance {
namespace {

constexpr const char* kRoleEnv = "TCPX_CONFORMANCE_ROLE";
constexpr const char* kRendezvousEnv = "TCPX_CONFORMANCE_RENDEZVOUS";
constexpr const char* kBounceEnv = "TCPX_P2P_TCP_BOUNCE_HOST";
// A freshly exec'd half may take a while to start under sanitizers, and a
// person starting two hosts by hand needs longer still.
constexpr int kMeetTimeoutMs = 60000;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

Role role_from_env() {
  std::string r = env_or(kRoleEnv, "");
  if (r == "peer") return Role::kPeer;
  if (r == "victim") return Role::kVictim;
  return Role::kDriver;
}

// Local mode: no role given, so this process is the driver and starts its peer.
bool local_mode() { return env_or(kRoleEnv, "").empty(); }

// The driver's listener lives for the whole process so a remote peer can be
// pointed at one fixed port for every test.
Status driver_listener(RendezvousListener** out) {
  static std::mutex mu;
  static RendezvousListener listener;
  std::lock_guard<std::mutex> lock(mu);
  if (!listener.is_open()) {
    std::string addr = local_mode() ? "127.0.0.1:0" : env_or(kRendezvousEnv, "");
    if (addr.empty()) return InvalidArgument(std::string(kRoleEnv) + "=driver needs " + kRendezvousEnv + "=host:port");
    TCPX_RETURN_IF_ERROR(RendezvousListener::open(addr, &listener));
  }
  *out = &listener;
  return Status::Ok();
}

const char* role_word(Role r) {
  switch (r) {
    case Role::kDriver: return "driver";
    case Role::kPeer: return "peer";
    case Role::kVictim: return "victim";
  }
  return "?";
}

}  // namespace

std::string mode_name(const ::testing::TestParamInfo<ModeParam>& info) { return info.param.name; }

std::string plugin_under_test() {
  std::string p = env_or("TCPX_NET_PLUGIN", "");
  if (!p.empty()) return p;
#ifdef TCPX_CONFORMANCE_BUILTIN_PLUGIN
  if (std::string(TCPX_CONFORMANCE_BUILTIN_PLUGIN).size() > 0) return TCPX_CONFORMANCE_BUILTIN_PLUGIN;
#endif
  return net::Transport::builtin_plugin_path();
}

bool plugin_is_builtin(const std::string& path) {
  auto slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return base == net::kBuiltinPluginFile;
}

bool strict_tcpx_emulation() { return env_or("TCPX_P2P_TCP_STRICT", "0") == "1"; }

::testing::AssertionResult refused(int rc, int code, bool exact) {
  if (exact ? rc == code : (rc != ncclSuccess && rc != ncclInProgress))
    return ::testing::AssertionSuccess() << rc_name(rc);
  return ::testing::AssertionFailure() << "expected " << (exact ? rc_name(code) : "a refusal") << ", got "
                                       << rc_name(rc);
}

void NetModeTest::SetUp() { prepare_mode(); }

void NetModeTest::prepare_mode() {
  const ModeParam& m = GetParam();
  std::string path = plugin_under_test();
  builtin_ = plugin_is_builtin(path);
  if (m.mem == MemKind::kCuda) {
    std::string why;
    space_ = cuda_space(&why);
    if (space_ == nullptr) {
      space_ = &host_space();
      GTEST_SKIP() << "CUDA memory: " << why;
    }
  }
  if (m.bounce_host && !builtin_)
    GTEST_SKIP() << "bounce-host mode (TCPX_P2P_TCP_BOUNCE_HOST=1) is a built-in plugin feature; " << path
                 << " does not have it";
  // Set for this process before the plugin reads it, and inherited by every
  // half this process starts.
  if (m.bounce_host)
    setenv(kBounceEnv, "1", 1);
  else
    unsetenv(kBounceEnv);
  Status s = net::Transport::load(path, &transport_);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ncclNetProperties_v7_t props{};
  if (net()->getProperties(dev(), &props) != ncclSuccess) return;  // PropertiesAreSane says why
  unpack_device_ = props.netDeviceType == NCCL_NET_DEVICE_UNPACK;
  // A foreign plugin may not take this memory at all (TCPX is built for CUDA
  // memory, the host-only test plugin for host memory): that is a skip, not a
  // failure. The built-in must take both.
  if (!builtin_ && (props.ptrSupport & mem_type()) == 0)
    GTEST_SKIP() << path << " does not support this memory type (ptrSupport " << props.ptrSupport << ")";
}

std::string NetPairTest::full_test_name() const {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

// This test binary again, running only `test` in `role`, meeting us at
// `rendezvous`.
static Status spawn_half(const std::string& test, const char* role, const std::string& rendezvous,
                         ChildProcess* out) {
  test::ChildOptions opts;
  opts.env = {std::string(kRoleEnv) + "=" + role, std::string(kRendezvousEnv) + "=" + rendezvous};
  return out->spawn({test::self_exe(), "--gtest_filter=" + test}, opts);
}

void NetPairTest::SetUp() {
  prepare_mode();
  if (IsSkipped() || HasFatalFailure()) return;
  role_ = role_from_env();
  const std::string name = full_test_name();
  if (role_ == Role::kDriver) {
    RendezvousListener* listener = nullptr;
    ASSERT_OK(driver_listener(&listener));
    // The child only execs after fork, so plugin threads here do not matter.
    if (local_mode()) {
      ASSERT_OK(spawn_half(name, "peer", "127.0.0.1:" + std::to_string(listener->port()), &peer_));
    }
    ASSERT_OK(listener->accept(kMeetTimeoutMs, &rv_));
    Status hello = rv_.expect("peer " + name, kMeetTimeoutMs);
    ASSERT_TRUE(hello.ok()) << hello.to_string() << " (both halves must run the same tests in the same order)";
  } else {
    std::string addr = env_or(kRendezvousEnv, "");
    ASSERT_FALSE(addr.empty()) << kRoleEnv << "=" << role_word(role_) << " needs " << kRendezvousEnv;
    ASSERT_OK(RendezvousConnection::connect(addr, kMeetTimeoutMs, &rv_));
    ASSERT_OK(rv_.send(std::string(role_word(role_)) + " " + name));
  }
  connected_ = true;
}

void NetPairTest::TearDown() {
  if (!connected_) {
    peer_.kill_and_reap();
    return;
  }
  if (role_ == Role::kDriver) {
    if (!HasFailure()) {
      // The peer's own assertions count too: it reports them here (and, in
      // local mode, through its exit code).
      std::string result;
      Status s = rv_.recv(&result);
      EXPECT_TRUE(s.ok() && result == "result:ok")
          << "the peer half failed: " << (s.ok() ? result : s.to_string()) << " (see its output)";
      (void)rv_.send("bye");
    }
    rv_.close();  // a peer still waiting on us sees EOF and ends
    if (peer_.running()) {
      test::ExitStatus st;
      Status w = peer_.wait(30000, &st);
      if (!w.ok()) {
        ADD_FAILURE() << "the peer process did not exit: killed";
        peer_.kill_and_reap();
      } else {
        int code = st.shell_code();
        EXPECT_EQ(code, 0) << "the peer process failed (exit code " << code << "); its output is above";
      }
    }
  } else {
    (void)rv_.send(HasFailure() ? "result:fail" : "result:ok");
    std::string bye;
    (void)rv_.recv(&bye, 10000);
    rv_.close();
  }
}

Status NetPairTest::open_recv_end(RecvEnd* out, RendezvousConnection* via) {
  RendezvousConnection& c = via != nullptr ? *via : rv_;
  net::NetHandle handle{};
  TCPX_RETURN_IF_ERROR(listen_end(net(), dev(), &handle, out));
  TCPX_RETURN_IF_ERROR(c.send(std::string(reinterpret_cast<const char*>(handle.data()), handle.size())));
  return accept_end(out);
}

Status NetPairTest::open_send_end(SendEnd* out, RendezvousConnection* via) {
  RendezvousConnection& c = via != nullptr ? *via : rv_;
  std::string bytes;
  TCPX_RETURN_IF_ERROR(c.recv(&bytes));
  net::NetHandle handle{};
  if (bytes.size() != handle.size()) return ProtocolError("plugin handle of " + std::to_string(bytes.size()) + " bytes");
  std::copy(bytes.begin(), bytes.end(), handle.begin());
  return connect_end(net(), dev(), &handle, out);
}

Status NetPairTest::spawn_victim(ChildProcess* out) {
  if (role_ != Role::kPeer) return InvalidArgument("only the peer half starts a victim");
  return spawn_half(full_test_name(), "victim", env_or(kRendezvousEnv, ""), out);
}

Status NetPairTest::accept_victim(RendezvousConnection* out) {
  RendezvousListener* listener = nullptr;
  TCPX_RETURN_IF_ERROR(driver_listener(&listener));
  TCPX_RETURN_IF_ERROR(listener->accept(kMeetTimeoutMs, out));
  return out->expect("victim " + full_test_name(), kMeetTimeoutMs);
}

}  // namespace tcpx::conformance
