/* A v7 plugin that only claims to be GPUDirect-TCPX: init succeeds and it has
 * one device. tcpx-doctor's TCPX verdicts are tested with it on hosts that
 * have no TCPX. Nothing but name/init/devices/getProperties is ever called. */
#include <stddef.h>

#include "net/nccl_net_v7.h"

static ncclResult_t stub_init(ncclDebugLogger_t log) { (void)log; return ncclSuccess; }
static ncclResult_t stub_devices(int* n) { *n = 1; return ncclSuccess; }
static ncclResult_t stub_props(int dev, ncclNetProperties_v7_t* p) {
  static char name[] = "eth1";
  static char pci[] = "/sys/devices/pci0000:00/0000:00:05.0";
  (void)dev;
  p->name = name;
  p->pciPath = pci;
  p->guid = 1;
  p->ptrSupport = NCCL_PTR_HOST | NCCL_PTR_CUDA;
  p->speed = 200000;
  p->port = 0;
  p->latency = 0;
  p->maxComms = 1024;
  p->maxRecvs = 1;
  p->netDeviceType = NCCL_NET_DEVICE_UNPACK;
  p->netDeviceVersion = NCCL_NET_DEVICE_UNPACK_VERSION;
  return ncclSuccess;
}
static ncclResult_t stub_fail(void) { return ncclInternalError; }

#define FAIL_FN(type) ((type)(void (*)(void))stub_fail)

__attribute__((visibility("default"))) const ncclNet_v7_t ncclNetPlugin_v7 = {
    "GPUDirectTCPX_v7",
    stub_init,
    stub_devices,
    stub_props,
    FAIL_FN(ncclResult_t (*)(int, void*, void**)),
    FAIL_FN(ncclResult_t (*)(int, void*, void**, ncclNetDeviceHandle_v7_t**)),
    FAIL_FN(ncclResult_t (*)(void*, void**, ncclNetDeviceHandle_v7_t**)),
    FAIL_FN(ncclResult_t (*)(void*, void*, int, int, void**)),
    NULL,
    FAIL_FN(ncclResult_t (*)(void*, void*)),
    FAIL_FN(ncclResult_t (*)(void*, void*, int, int, void*, void**)),
    FAIL_FN(ncclResult_t (*)(void*, int, void**, int*, int*, void**, void**)),
    NULL,
    FAIL_FN(ncclResult_t (*)(void*, int*, int*)),
    FAIL_FN(ncclResult_t (*)(void*)),
    FAIL_FN(ncclResult_t (*)(void*)),
    FAIL_FN(ncclResult_t (*)(void*)),
    NULL,
    FAIL_FN(ncclResult_t (*)(void*, int, void*)),
};
