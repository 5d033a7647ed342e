#include "net/tcp/plugin_log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace tcpx::tcp {
namespace {
std::atomic<ncclDebugLogger_t> g_logger{nullptr};
constexpr unsigned long kNcclNetFlag = 0x10;  // NCCL_NET subsystem bit
}  // namespace

void set_logger(ncclDebugLogger_t logger) { g_logger.store(logger, std::memory_order_release); }

void log_line(ncclDebugLogLevel level, const char* file, int line, const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  ncclDebugLogger_t logger = g_logger.load(std::memory_order_acquire);
  if (logger != nullptr) {
    logger(level, kNcclNetFlag, file, line, "NET/tcpx-p2p-tcp: %s", msg);
  } else if (level == NCCL_LOG_WARN) {
    fprintf(stderr, "NET/tcpx-p2p-tcp WARN %s\n", msg);
  }
}

}  // namespace tcpx::tcp
