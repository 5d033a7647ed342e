// Values read from the environment: tcpx::Config::from_env (the engine's
// TCPX_* variables) and the built-in plugin's read_options / read_nsocks /
// read_bounce_host (TCPX_P2P_TCP_*).
//
// Input: records "<u8 variable index><value bytes>" separated by NUL bytes
// (an environment value cannot hold NUL); every listed variable is unset
// first, then the records are set.
// Invariants: Config::from_env either fails with INVALID_ARGUMENT naming a
// variable that is set, or returns a Config that validate() accepts whose
// integer fields are the values given; the plugin's readers either fail with
// a reason naming their variable, or return values inside their ranges.
#include <cstdlib>
#include <cstring>
#include <string>

#include "fuzz_check.h"
#include "net/tcp/options.h"
#include "tcpx/config.h"

using namespace tcpx;
using tcpx::fuzz::Bytes;

namespace {

// The integer variables and the Config field each fills.
struct IntVar {
  const char* name;
  long long (*field)(const Config&);
};
const IntVar kIntVars[] = {
    {"TCPX_CHANNELS", [](const Config& c) -> long long { return c.channels_per_peer; }},
    {"TCPX_SOCKETS_PER_CHANNEL", [](const Config& c) -> long long { return c.sockets_per_channel; }},
    {"TCPX_CHUNK_BYTES", [](const Config& c) -> long long { return static_cast<long long>(c.chunk_bytes); }},
    {"TCPX_EAGER_BYTES", [](const Config& c) -> long long { return static_cast<long long>(c.eager_bytes); }},
    {"TCPX_SPIN_US", [](const Config& c) -> long long { return c.spin_us; }},
    {"TCPX_CONNECT_TIMEOUT_MS", [](const Config& c) -> long long { return c.connect_timeout_ms; }},
    {"TCPX_PEER_TIMEOUT_MS", [](const Config& c) -> long long { return c.peer_timeout_ms; }},
    {"TCPX_NET_DEV", [](const Config& c) -> long long { return c.net_dev; }},
    {"TCPX_LISTEN_PORT", [](const Config& c) -> long long { return c.listen_port; }},
};
const char* const kOtherVars[] = {"TCPX_NET_PLUGIN",          "TCPX_LISTEN_ADDR",     "TCPX_P2P_TCP_STRICT",
                                  "TCPX_P2P_TCP_BOUNCE_HOST", "TCPX_P2P_TCP_IFNAME",  "TCPX_P2P_TCP_FAMILY",
                                  "TCPX_P2P_TCP_NSOCKS",      "TCPX_P2P_TCP_READ_LOWAT"};
constexpr size_t kIntCount = sizeof kIntVars / sizeof kIntVars[0];
constexpr size_t kVarCount = kIntCount + sizeof kOtherVars / sizeof kOtherVars[0];

const char* var_name(size_t i) { return i < kIntCount ? kIntVars[i].name : kOtherVars[i - kIntCount]; }

bool names_a_set_variable(const std::string& message) {
  for (size_t i = 0; i < kVarCount; ++i)
    if (std::getenv(var_name(i)) != nullptr && message.find(var_name(i)) != std::string::npos) return true;
  return false;
}

void check_engine_config() {
  Config c;
  Status s = Config::from_env(&c);
  FUZZ_EXPECT_CODE(s, StatusCode::kInvalidArgument);
  if (!s.ok()) {
    FUZZ_CHECK(names_a_set_variable(s.message()));
    return;
  }
  FUZZ_CHECK(c.validate().ok());
  for (const IntVar& v : kIntVars) {
    const char* text = std::getenv(v.name);
    if (text != nullptr) FUZZ_CHECK(v.field(c) == std::strtoll(text, nullptr, 10));
  }
}

void check_plugin_options() {
  tcp::Options o;
  std::string why;
  if (tcp::read_options(&o, &why)) {
    FUZZ_CHECK(o.family == 0 || o.family == 4 || o.family == 6);
    FUZZ_CHECK(o.read_lowat >= 0 && o.read_lowat <= (16 << 20));
    for (const std::string& name : o.ifnames) FUZZ_CHECK(!name.empty() && name.find(',') == std::string::npos);
  } else {
    FUZZ_CHECK(why.find("TCPX_P2P_TCP_") != std::string::npos);
  }
  int nsocks = 0;
  why.clear();
  if (tcp::read_nsocks(&nsocks, &why)) FUZZ_CHECK(nsocks >= 1 && nsocks <= tcp::kMaxSocketsPerComm);
  else FUZZ_CHECK(why.find("TCPX_P2P_TCP_NSOCKS") != std::string::npos);
  bool bounce = false;
  why.clear();
  if (!tcp::read_bounce_host(&bounce, &why)) FUZZ_CHECK(why.find("TCPX_P2P_TCP_BOUNCE_HOST") != std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (size_t i = 0; i < kVarCount; ++i) unsetenv(var_name(i));
  size_t at = 0;
  while (at < size) {
    const size_t var = data[at] % kVarCount;
    size_t end = at + 1;
    while (end < size && data[end] != 0) ++end;
    setenv(var_name(var), std::string(data + at + 1, data + end).c_str(), 1);
    at = end + 1;
  }
  check_engine_config();
  check_plugin_options();
  return 0;
}
