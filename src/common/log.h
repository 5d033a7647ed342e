// Minimal leveled logging to stderr. The level comes from TCPX_LOG_LEVEL
// (NONE, WARN, INFO, TRACE; default WARN). The core never prints to stdout.
#ifndef TCPX_COMMON_LOG_H_
#define TCPX_COMMON_LOG_H_

namespace tcpx::log {

enum class Level : int { kNone = 0, kWarn = 2, kInfo = 3, kTrace = 5 };

bool enabled(Level level);
void write(Level level, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
// A logger with the ncclDebugLogger_t shape, handed to plugins' init().
void plugin_logger(int level, unsigned long flags, const char* file, int line,
                   const char* fmt, ...) __attribute__((format(printf, 5, 6)));

}  // namespace tcpx::log

#define TCPX_LOG(level, ...)                                              \
  do {                                                                    \
    if (::tcpx::log::enabled(::tcpx::log::Level::level))                  \
      ::tcpx::log::write(::tcpx::log::Level::level, __FILE__, __LINE__,   \
                         __VA_ARGS__);                                    \
  } while (0)
#define TCPX_WARN(...) TCPX_LOG(kWarn, __VA_ARGS__)
#define TCPX_INFO(...) TCPX_LOG(kInfo, __VA_ARGS__)
#define TCPX_TRACE(...) TCPX_LOG(kTrace, __VA_ARGS__)

#endif  // TCPX_COMMON_LOG_H_
