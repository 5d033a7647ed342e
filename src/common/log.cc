#include "common/log.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace tcpx::log {
namespace {

Level level_from_env() {
  const char* v = std::getenv("TCPX_LOG_LEVEL");
  if (v == nullptr || *v == '\0') return Level::kWarn;
  if (strcasecmp(v, "NONE") == 0) return Level::kNone;
  if (strcasecmp(v, "WARN") == 0) return Level::kWarn;
  if (strcasecmp(v, "INFO") == 0) return Level::kInfo;
  if (strcasecmp(v, "TRACE") == 0) return Level::kTrace;
  std::fprintf(stderr, "tcpx: unknown TCPX_LOG_LEVEL '%s' (NONE, WARN, INFO, TRACE); using WARN\n", v);
  return Level::kWarn;
}

Level current() {
  static const Level level = level_from_env();
  return level;
}

const char* tag(int level) {
  switch (level) {
    case 2: return "WARN";
    case 3: return "INFO";
    case 5: return "TRACE";
    default: return "LOG";
  }
}

void vwrite(int level, const char* file, int line, const char* fmt, va_list ap) {
  char msg[1024];
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  const char* base = file ? std::strrchr(file, '/') : nullptr;
  static std::mutex mu;  // keeps lines from different threads whole
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "tcpx %s %s:%d %s\n", tag(level), base ? base + 1 : (file ? file : "?"), line, msg);
}

}  // namespace

bool enabled(Level level) {
  return level != Level::kNone && static_cast<int>(level) <= static_cast<int>(current());
}

void write(Level level, const char* file, int line, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vwrite(static_cast<int>(level), file, line, fmt, ap);
  va_end(ap);
}

void plugin_logger(int level, unsigned long /*flags*/, const char* file, int line,
                   const char* fmt, ...) {
  // NCCL levels: 1 VERSION, 2 WARN, 3 INFO, 4 ABORT, 5 TRACE. ABORT is logged as
  // a warning: the plugin reports the failure through its return code.
  int as = (level == 4 || level == 1) ? 2 : level;
  if (!enabled(static_cast<Level>(as))) return;
  va_list ap;
  va_start(ap, fmt);
  vwrite(as, file, line, fmt, ap);
  va_end(ap);
}

}  // namespace tcpx::log
