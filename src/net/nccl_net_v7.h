/*
 * The ncclNet v7 plugin ABI, declared here from the published facts (vtable
 * order, field order, return codes) so that this project can load Google's
 * GPUDirect-TCPX plugin and expose its own built-in TCP plugin with the very
 * same table. Plain C so a plugin can be written in either language.
 *
 * Only v7 is declared on purpose: v8 changes regMr's size to size_t and adds a
 * field to the properties, so a v8 table must never be read through this one.
 */
#ifndef TCPX_NET_NCCL_NET_V7_H_
#define TCPX_NET_NCCL_NET_V7_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes every vtable entry uses. */
typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7
} ncclResult_t;

#define NCCL_NET_HANDLE_MAXSIZE 128

/* Memory types for regMr. */
#define NCCL_PTR_HOST 0x1
#define NCCL_PTR_CUDA 0x2
#define NCCL_PTR_DMABUF 0x4

/* Log levels and the logger signature handed to init(). */
typedef enum {
  NCCL_LOG_NONE = 0,
  NCCL_LOG_VERSION = 1,
  NCCL_LOG_WARN = 2,
  NCCL_LOG_INFO = 3,
  NCCL_LOG_ABORT = 4,
  NCCL_LOG_TRACE = 5
} ncclDebugLogLevel;

typedef void (*ncclDebugLogger_t)(ncclDebugLogLevel level, unsigned long flags,
                                  const char* file, int line, const char* fmt,
                                  ...);

typedef enum {
  NCCL_NET_DEVICE_HOST = 0,
  NCCL_NET_DEVICE_UNPACK = 1
} ncclNetDeviceType;

/* Version of the unpack device handle TCPX publishes. */
#define NCCL_NET_DEVICE_UNPACK_VERSION 0x7

typedef struct {
  char* name;        /* for logs */
  char* pciPath;     /* sysfs path of the NIC's PCI device */
  uint64_t guid;     /* unique per NIC chip */
  int ptrSupport;    /* NCCL_PTR_HOST | NCCL_PTR_CUDA | NCCL_PTR_DMABUF */
  int speed;         /* Mbps */
  int port;
  float latency;     /* microseconds */
  int maxComms;
  int maxRecvs;      /* grouped receives: TCPX says 1 */
  ncclNetDeviceType netDeviceType;
  int netDeviceVersion;
} ncclNetProperties_v7_t;

typedef struct {
  ncclNetDeviceType netDeviceType;
  int netDeviceVersion;
  void* handle;            /* for UNPACK: an unpackNetDeviceHandle* */
  size_t size;
  int needsProxyProgress;
} ncclNetDeviceHandle_v7_t;

typedef struct {
  const char* name;
  ncclResult_t (*init)(ncclDebugLogger_t logFunction);
  ncclResult_t (*devices)(int* ndev);
  ncclResult_t (*getProperties)(int dev, ncclNetProperties_v7_t* props);
  /* handle: NCCL_NET_HANDLE_MAXSIZE bytes the caller ships to the peer. */
  ncclResult_t (*listen)(int dev, void* handle, void** listenComm);
  /* Non-blocking: *sendComm stays NULL until connected; call again with the
   * same handle bytes. */
  ncclResult_t (*connect)(int dev, void* handle, void** sendComm,
                          ncclNetDeviceHandle_v7_t** sendDevComm);
  /* Non-blocking like connect. *recvDevComm must point at caller storage the
   * plugin fills (UNPACK type for TCPX). */
  ncclResult_t (*accept)(void* listenComm, void** recvComm,
                         ncclNetDeviceHandle_v7_t** recvDevComm);
  ncclResult_t (*regMr)(void* comm, void* data, int size, int type,
                        void** mhandle);
  ncclResult_t (*regMrDmaBuf)(void* comm, void* data, size_t size, int type,
                              uint64_t offset, int fd, void** mhandle);
  ncclResult_t (*deregMr)(void* comm, void* mhandle);
  ncclResult_t (*isend)(void* sendComm, void* data, int size, int tag,
                        void* mhandle, void** request);
  ncclResult_t (*irecv)(void* recvComm, int n, void** data, int* sizes,
                        int* tags, void** mhandles, void** request);
  ncclResult_t (*iflush)(void* recvComm, int n, void** data, int* sizes,
                         void** mhandles, void** request);
  ncclResult_t (*test)(void* request, int* done, int* sizes);
  ncclResult_t (*closeSend)(void* sendComm);
  ncclResult_t (*closeRecv)(void* recvComm);
  ncclResult_t (*closeListen)(void* listenComm);
  ncclResult_t (*getDeviceMr)(void* comm, void* mhandle, void** dptr_mhandle);
  ncclResult_t (*irecvConsumed)(void* recvComm, int n, void* request);
} ncclNet_v7_t;

/* The one symbol a v7 plugin exports. */
#define NCCL_NET_PLUGIN_SYMBOL_V7 "ncclNetPlugin_v7"

/* ---- Unpack metadata (TCPX receive path, device handle version 0x7) ----
 * The k-th irecv on a recv comm uses slot k % NET_UNPACK_MAX_SLICES; once
 * test() reports it done, cnt[slot] entries of mem[slot] describe where each
 * fragment sits in the bounce buffer (src_off) and where it belongs in the
 * irecv's destination (dst_off). The memory is host-mapped so a GPU kernel can
 * read it directly. */
#define NET_UNPACK_MAX_SLICES 16
#define NET_UNPACK_MAX_SLICE_PAGES 2048
#define NET_UNPACK_PAGE_SIZE 4096

typedef struct {
  uint32_t src_off;
  uint32_t len;
  uint64_t dst_off;
} __attribute__((aligned(16))) loadMeta;

typedef struct {
  loadMeta mem[NET_UNPACK_MAX_SLICES][NET_UNPACK_MAX_SLICE_PAGES];
  uint64_t cnt[NET_UNPACK_MAX_SLICES];
} netUnpackMeta;

typedef struct {
  netUnpackMeta* meta;  /* host-mapped */
  void* bounce_buf;     /* base the src_off values are relative to */
  uint64_t head;
} unpackNetDeviceHandle;

#ifdef __cplusplus
}  /* extern "C" */

/* Layout checks: these offsets are what the other side of the ABI reads. */
static_assert(sizeof(ncclNetProperties_v7_t) == 56, "v7 properties layout");
static_assert(offsetof(ncclNetProperties_v7_t, ptrSupport) == 24, "ptrSupport");
static_assert(offsetof(ncclNetProperties_v7_t, netDeviceType) == 48, "devType");
static_assert(sizeof(ncclNetDeviceHandle_v7_t) == 32, "device handle layout");
static_assert(offsetof(ncclNetDeviceHandle_v7_t, handle) == 8, "handle");
static_assert(offsetof(ncclNetDeviceHandle_v7_t, size) == 16, "size");
static_assert(offsetof(ncclNetDeviceHandle_v7_t, needsProxyProgress) == 24, "npp");
static_assert(sizeof(ncclNet_v7_t) == 19 * sizeof(void*), "v7 vtable has 19 slots");
static_assert(offsetof(ncclNet_v7_t, isend) == 10 * sizeof(void*), "isend slot");
static_assert(offsetof(ncclNet_v7_t, irecvConsumed) == 18 * sizeof(void*), "irecvConsumed slot");
static_assert(sizeof(loadMeta) == 16 && alignof(loadMeta) == 16, "loadMeta");
static_assert(offsetof(netUnpackMeta, cnt) == 16 * 2048 * 16, "netUnpackMeta.cnt");
static_assert(sizeof(unpackNetDeviceHandle) == 24, "unpack device handle");
#endif

#endif  /* TCPX_NET_NCCL_NET_V7_H_ */
