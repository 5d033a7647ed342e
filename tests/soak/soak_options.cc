#include "soak_options.h"

#include <algorithm>
#include <cstdlib>

namespace tcpx::soak {
namespace {

Status number(const char* flag, const char* text, long long lo, long long hi, long long* out) {
  char* end = nullptr;
  long long v = text != nullptr ? std::strtoll(text, &end, 10) : 0;
  if (text == nullptr || *text == '\0' || *end != '\0' || v < lo || v > hi)
    return InvalidArgument(std::string(flag) + " wants a number in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "], got '" + (text ? text : "") + "'");
  *out = v;
  return Status::Ok();
}

}  // namespace

const char* soak_usage() {
  return "usage: tcpx-soak [--seconds N] [--warmup-seconds N] [--peers N] [--fault-every-ms N]\n"
         "                 [--peer-timeout-ms N] [--max-ops N] [--seed N] [--rss-growth-mib N]\n"
         "Runs mixed two-sided and one-sided traffic against peer processes it kills,\n"
         "freezes and replaces; fails on any bad byte, any unexpected error, or RSS,\n"
         "fd or thread growth (tests/soak/README.md).\n";
}

int SoakOptions::warmup() const { return warmup_seconds >= 0 ? warmup_seconds : std::min(30, seconds / 6); }

Status SoakOptions::parse(int argc, char** argv, SoakOptions* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
    long long v = 0;
    auto take = [&](long long lo, long long hi) {
      ++i;
      return number(a.c_str(), next, lo, hi, &v);
    };
    if (a == "--peer") {
      if (i + 3 >= argc) return InvalidArgument("--peer wants PORT SEED OPS");
      TCPX_RETURN_IF_ERROR(number("--peer PORT", argv[i + 1], 1, 65535, &v));
      o->peer_server_port = static_cast<uint16_t>(v);
      TCPX_RETURN_IF_ERROR(number("--peer SEED", argv[i + 2], 0, INT64_MAX, &v));
      o->peer_seed = static_cast<uint64_t>(v);
      TCPX_RETURN_IF_ERROR(number("--peer OPS", argv[i + 3], 0, INT64_MAX, &v));
      o->peer_ops = static_cast<uint64_t>(v);
      o->peer = true;
      i += 3;
    } else if (a == "--seconds") {
      TCPX_RETURN_IF_ERROR(take(1, 7 * 24 * 3600));
      o->seconds = static_cast<int>(v);
    } else if (a == "--warmup-seconds") {
      TCPX_RETURN_IF_ERROR(take(0, 3600));
      o->warmup_seconds = static_cast<int>(v);
    } else if (a == "--peers") {
      TCPX_RETURN_IF_ERROR(take(1, 64));
      o->peers = static_cast<int>(v);
    } else if (a == "--fault-every-ms") {
      TCPX_RETURN_IF_ERROR(take(10, 3600000));
      o->fault_every_ms = static_cast<int>(v);
    } else if (a == "--peer-timeout-ms") {
      TCPX_RETURN_IF_ERROR(take(100, 600000));
      o->peer_timeout_ms = static_cast<int>(v);
    } else if (a == "--max-ops") {
      TCPX_RETURN_IF_ERROR(take(1, INT64_MAX));
      o->max_ops = static_cast<uint64_t>(v);
      o->min_ops = std::min(o->min_ops, o->max_ops);
    } else if (a == "--seed") {
      TCPX_RETURN_IF_ERROR(take(0, INT64_MAX));
      o->seed = static_cast<uint64_t>(v);
    } else if (a == "--rss-growth-mib") {
      TCPX_RETURN_IF_ERROR(take(1, 1 << 20));
      o->rss_growth_mib = static_cast<int>(v);
    } else {
      return InvalidArgument("unknown argument '" + a + "'");
    }
  }
  if (!o->peer && o->warmup() >= o->seconds) return InvalidArgument("--warmup-seconds must be below --seconds");
  return Status::Ok();
}

}  // namespace tcpx::soak
