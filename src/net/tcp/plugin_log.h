// Logging for the built-in plugin: everything goes to the logger the host
// handed to init() (NCCL's shape). Without one, warnings still reach stderr so
// a failed transfer is never silent; info and trace lines are then dropped.
#ifndef TCPX_NET_TCP_PLUGIN_LOG_H_
#define TCPX_NET_TCP_PLUGIN_LOG_H_

#include "net/nccl_net_v7.h"

namespace tcpx::tcp {

void set_logger(ncclDebugLogger_t logger);
void log_line(ncclDebugLogLevel level, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

}  // namespace tcpx::tcp

#define TCP_WARN(...) ::tcpx::tcp::log_line(NCCL_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define TCP_INFO(...) ::tcpx::tcp::log_line(NCCL_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)

#endif  // TCPX_NET_TCP_PLUGIN_LOG_H_
