// Config::from_env / validate / describe: the one place TCPX_* variables are
// read. A variable that is set but malformed is an error naming it; there are
// no silent fallbacks.
#include "tcpx/config.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <string>

#include "engine/wire.h"

namespace tcpx {
namespace {

// Parses a whole decimal integer in [lo, hi]. Leading/trailing junk, empty
// strings and overflow are errors.
Status parse_int(const char* var, const char* text, long long lo, long long hi, long long* out) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || v < lo || v > hi)
    return InvalidArgument(std::string(var) + "='" + text + "' is not an integer in [" +
                           std::to_string(lo) + ", " + std::to_string(hi) + "]");
  *out = v;
  return Status::Ok();
}

template <typename T>
Status env_int(const char* var, long long lo, long long hi, T* field) {
  const char* v = std::getenv(var);
  if (v == nullptr) return Status::Ok();
  long long parsed = 0;
  TCPX_RETURN_IF_ERROR(parse_int(var, v, lo, hi, &parsed));
  *field = static_cast<T>(parsed);
  return Status::Ok();
}

void env_string(const char* var, std::string* field) {
  const char* v = std::getenv(var);
  if (v != nullptr) *field = v;
}

constexpr size_t kMaxChunk = 4u << 20;  // TCPX bounce buffer: 2048 x 4 KiB
constexpr size_t kMaxEager = engine::kMaxInlineBytes;  // stays well inside one control frame
// The resource caps: at least a maximal frame (1 MiB message) must fit.
constexpr long long kMinUnmatched = 4096;
constexpr long long kMinQueueCap = 2 << 20;
constexpr long long kMaxCap = 1ll << 40;
constexpr size_t kMinAuthKey = 16;         // shorter keys fall to an offline guess from one transcript
constexpr size_t kMaxAuthKey = 1024;

}  // namespace

Status Config::from_env(Config* out) {
  if (out == nullptr) return InvalidArgument("Config::from_env: out is null");
  Config c;
  TCPX_RETURN_IF_ERROR(env_int("TCPX_CHANNELS", 1, 16, &c.channels_per_peer));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_SOCKETS_PER_CHANNEL", 1, 8, &c.sockets_per_channel));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_CHUNK_BYTES", 4096, kMaxChunk, &c.chunk_bytes));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_EAGER_BYTES", 0, kMaxEager, &c.eager_bytes));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_SPIN_US", 0, 1000000, &c.spin_us));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_CONNECT_TIMEOUT_MS", 1, 3600000, &c.connect_timeout_ms));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_PEER_TIMEOUT_MS", 100, 3600000, &c.peer_timeout_ms));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_TRANSFER_TIMEOUT_MS", 0, 86400000, &c.transfer_timeout_ms));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_NET_DEV", -1, 1023, &c.net_dev));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_LISTEN_PORT", 0, 65535, &c.listen_port));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_MAX_UNMATCHED_BYTES", kMinUnmatched, kMaxCap, &c.max_unmatched_bytes));
  TCPX_RETURN_IF_ERROR(env_int("TCPX_MAX_UNDELIVERED_BYTES", kMinQueueCap, kMaxCap, &c.max_undelivered_bytes));
  TCPX_RETURN_IF_ERROR(
      env_int("TCPX_MAX_CONTROL_BACKLOG_BYTES", kMinQueueCap, kMaxCap, &c.max_control_backlog_bytes));
  env_string("TCPX_NET_PLUGIN", &c.plugin_path);
  env_string("TCPX_LISTEN_ADDR", &c.listen_addr);
  TCPX_RETURN_IF_ERROR(env_int("TCPX_MAX_HANDSHAKES", 1, 65536, &c.max_handshakes));
  env_string("TCPX_AUTH_KEY", &c.auth_key);
  TCPX_RETURN_IF_ERROR(c.validate());
  *out = std::move(c);
  return Status::Ok();
}

Status Config::validate() const {
  if (channels_per_peer < 1 || channels_per_peer > 16)
    return InvalidArgument("channels_per_peer (TCPX_CHANNELS) must be in [1, 16], got " +
                           std::to_string(channels_per_peer));
  if (sockets_per_channel < 1 || sockets_per_channel > 8)
    return InvalidArgument("sockets_per_channel (TCPX_SOCKETS_PER_CHANNEL) must be in [1, 8], got " +
                           std::to_string(sockets_per_channel));
  if (chunk_bytes < 4096 || chunk_bytes > kMaxChunk)
    return InvalidArgument("chunk_bytes (TCPX_CHUNK_BYTES) must be in [4096, 4194304], got " +
                           std::to_string(chunk_bytes));
  if (eager_bytes > kMaxEager)
    return InvalidArgument("eager_bytes (TCPX_EAGER_BYTES) must be at most 524288, got " +
                           std::to_string(eager_bytes));
  if (spin_us < 0 || spin_us > 1000000)
    return InvalidArgument("spin_us (TCPX_SPIN_US) must be in [0, 1000000], got " + std::to_string(spin_us));
  if (connect_timeout_ms < 1)
    return InvalidArgument("connect_timeout_ms (TCPX_CONNECT_TIMEOUT_MS) must be positive");
  if (peer_timeout_ms < 100)
    return InvalidArgument("peer_timeout_ms (TCPX_PEER_TIMEOUT_MS) must be >= 100");
  if (transfer_timeout_ms < 0)
    return InvalidArgument("transfer_timeout_ms (TCPX_TRANSFER_TIMEOUT_MS) must be >= 0 (0: no deadline)");
  if (net_dev < -1) return InvalidArgument("net_dev (TCPX_NET_DEV) must be >= -1");
  auto in_range = [](size_t v, long long lo) { return v >= static_cast<size_t>(lo) && v <= static_cast<size_t>(kMaxCap); };
  if (!in_range(max_unmatched_bytes, kMinUnmatched))
    return InvalidArgument("max_unmatched_bytes (TCPX_MAX_UNMATCHED_BYTES) must be in [4096, 2^40], got " +
                           std::to_string(max_unmatched_bytes));
  if (!in_range(max_undelivered_bytes, kMinQueueCap))
    return InvalidArgument("max_undelivered_bytes (TCPX_MAX_UNDELIVERED_BYTES) must be in [2097152, 2^40], got " +
                           std::to_string(max_undelivered_bytes));
  if (!in_range(max_control_backlog_bytes, kMinQueueCap))
    return InvalidArgument("max_control_backlog_bytes (TCPX_MAX_CONTROL_BACKLOG_BYTES) must be in [2097152, 2^40], "
                           "got " + std::to_string(max_control_backlog_bytes));
  if (max_handshakes < 1 || max_handshakes > 65536)
    return InvalidArgument("max_handshakes (TCPX_MAX_HANDSHAKES) must be in [1, 65536], got " +
                           std::to_string(max_handshakes));
  // The key itself never appears in a message.
  if (!auth_key.empty() && (auth_key.size() < kMinAuthKey || auth_key.size() > kMaxAuthKey))
    return InvalidArgument("auth_key (TCPX_AUTH_KEY) must be empty (off) or 16 to 1024 bytes long, got " +
                           std::to_string(auth_key.size()) + " bytes");
  return Status::Ok();
}

std::string Config::describe() const {
  std::ostringstream o;
  o << "channels_per_peer=" << channels_per_peer << "\n"
    << "sockets_per_channel=" << sockets_per_channel << "\n"
    << "chunk_bytes=" << chunk_bytes << "\n"
    << "eager_bytes=" << eager_bytes << "\n"
    << "spin_us=" << spin_us << "\n"
    << "connect_timeout_ms=" << connect_timeout_ms << "\n"
    << "peer_timeout_ms=" << peer_timeout_ms << "\n"
    << "transfer_timeout_ms=" << transfer_timeout_ms << "\n"
    << "plugin_path=" << (plugin_path.empty() ? "(built-in)" : plugin_path) << "\n"
    << "net_dev=" << net_dev << "\n"
    << "listen_addr=" << (listen_addr.empty() ? "(auto)" : listen_addr) << "\n"
    << "listen_port=" << listen_port << "\n"
    << "max_unmatched_bytes=" << max_unmatched_bytes << "\n"
    << "max_undelivered_bytes=" << max_undelivered_bytes << "\n"
    << "max_control_backlog_bytes=" << max_control_backlog_bytes << "\n"
    << "max_handshakes=" << max_handshakes << "\n"
    << "auth_key=" << (auth_key.empty() ? "(off)" : "(set, " + std::to_string(auth_key.size()) + " bytes)") << "\n";
  return o.str();
}

}  // namespace tcpx
