// Small helpers over non-blocking TCP sockets, and the single place where
// errno values become ncclResult_t codes.
#ifndef TCPX_NET_TCP_SOCKET_OPS_H_
#define TCPX_NET_TCP_SOCKET_OPS_H_

#include <sys/socket.h>

#include <cerrno>

#include "net/nccl_net_v7.h"

namespace tcpx::tcp {

// Non-blocking, close-on-exec, TCP_NODELAY; false on failure (errno set).
bool tune_data_socket(int fd);
bool set_nonblocking(int fd);

// Peer gone (EOF, reset, broken pipe) is a remote error; anything else a
// system error.
ncclResult_t errno_to_result(int err);
inline bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

void close_fd(int* fd);

}  // namespace tcpx::tcp

#endif  // TCPX_NET_TCP_SOCKET_OPS_H_
