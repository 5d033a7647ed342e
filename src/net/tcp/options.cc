#include "net/tcp/options.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "net/tcp/plugin_log.h"

namespace tcpx::tcp {
namespace {

bool parse_int(const char* s, long lo, long hi, long* out) {
  char* end = nullptr;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

std::atomic<bool> g_strict{false};
std::atomic<int> g_read_lowat{Options::kDefaultReadLowat};

// An optional 0/1 variable: unset or empty leaves *out as it is.
bool read_switch(const char* name, bool* out, std::string* why) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return true;
  if (strcmp(v, "1") == 0) *out = true;
  else if (strcmp(v, "0") == 0) *out = false;
  else {
    *why = std::string(name) + " must be 0 or 1, got '" + v + "'";
    return false;
  }
  return true;
}

}  // namespace

bool strict_emulation() { return g_strict.load(std::memory_order_relaxed); }
void set_strict_emulation(bool on) { g_strict.store(on, std::memory_order_relaxed); }
int read_lowat() { return g_read_lowat.load(std::memory_order_relaxed); }
void set_read_lowat(int bytes) { g_read_lowat.store(bytes, std::memory_order_relaxed); }

bool stall_on_peer_loss(const char* comm, bool* stalled, const char* why, int err) {
  if (!strict_emulation()) return false;
  if (!*stalled)
    TCP_WARN("%s: %s%s%s; strict TCPX emulation: its requests stay pending forever, as in Google's plugin "
             "(detect peer death elsewhere)", comm, why, err ? ": " : "", err ? strerror(err) : "");
  *stalled = true;
  return true;
}

bool read_bounce_host(bool* out, std::string* why) {
  *out = false;
  return read_switch("TCPX_P2P_TCP_BOUNCE_HOST", out, why);
}

bool read_options(Options* out, std::string* why) {
  Options o;
  if (!read_switch("TCPX_P2P_TCP_STRICT", &o.strict, why)) return false;
  bool bounce = false;  // checked here too, so a typo fails init, not a later listen
  if (!read_bounce_host(&bounce, why)) return false;
  if (const char* v = getenv("TCPX_P2P_TCP_IFNAME"); v != nullptr && *v != '\0') {
    std::string all(v);
    size_t start = 0;
    while (start <= all.size()) {
      size_t comma = all.find(',', start);
      if (comma == std::string::npos) comma = all.size();
      if (comma > start) o.ifnames.push_back(all.substr(start, comma - start));
      start = comma + 1;
    }
  }
  if (const char* v = getenv("TCPX_P2P_TCP_FAMILY"); v != nullptr && *v != '\0') {
    long f = 0;
    if (!parse_int(v, 0, 6, &f) || (f != 0 && f != 4 && f != 6)) {
      *why = std::string("TCPX_P2P_TCP_FAMILY must be 4, 6 or 0 (either), got '") + v + "'";
      return false;
    }
    o.family = static_cast<int>(f);
  }
  if (const char* v = getenv("TCPX_P2P_TCP_READ_LOWAT"); v != nullptr && *v != '\0') {
    long n = 0;
    if (!parse_int(v, 0, 16L << 20, &n)) {
      *why = std::string("TCPX_P2P_TCP_READ_LOWAT must be 0..16777216 bytes, got '") + v + "'";
      return false;
    }
    o.read_lowat = static_cast<int>(n);
  }
  *out = std::move(o);
  return true;
}

bool read_nsocks(int* out, std::string* why) {
  *out = 1;
  const char* v = getenv("TCPX_P2P_TCP_NSOCKS");
  if (v == nullptr || *v == '\0') return true;
  long n = 0;
  if (!parse_int(v, 1, kMaxSocketsPerComm, &n)) {
    *why = std::string("TCPX_P2P_TCP_NSOCKS must be 1..8, got '") + v + "'";
    return false;
  }
  *out = static_cast<int>(n);
  return true;
}

}  // namespace tcpx::tcp
