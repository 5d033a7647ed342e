/*
 * Extensions the built-in TCP plugin exports beside ncclNetPlugin_v7. They
 * are not part of NCCL's ABI: a loader looks the symbol up with dlsym and
 * falls back to the plain v7 call when a plugin (Google's TCPX, aws-ofi-nccl)
 * does not have it.
 *
 * Why it exists: the engine chooses the socket count of each comm per
 * Endpoint (Config::sockets_per_channel). A plain v7 connect() takes no such
 * argument, and handing it over through the process environment (setenv in a
 * library, racing every getenv of the application's threads, first endpoint
 * wins) is not something a library may do.
 */
#ifndef TCPX_NET_TCPX_NET_EXT_H_
#define TCPX_NET_TCPX_NET_EXT_H_

#include "net/nccl_net_v7.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TCPX_NET_EXT_SYMBOL_V1 "tcpxNetExt_v1"

typedef struct {
  /* connect() with the number of sockets for this comm (1..8) chosen by the
   * caller; TCPX_P2P_TCP_NSOCKS is not read. Same non-blocking contract as
   * connect(): call again with the same handle bytes until *sendComm is set.
   * The count given on the first call of a connect is the one used. */
  ncclResult_t (*connectWithSockets)(int dev, void* handle, int nsocks, void** sendComm,
                                     ncclNetDeviceHandle_v7_t** sendDevComm);
} tcpxNetExt_v1_t;

#ifdef __cplusplus
}
#endif

#endif /* TCPX_NET_TCPX_NET_EXT_H_ */
