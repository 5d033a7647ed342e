// The checks tcpx-doctor runs, one file each, and what each hands to the
// verdict in main.cc.
#ifndef TCPX_TOOLS_DOCTOR_CHECKS_H_
#define TCPX_TOOLS_DOCTOR_CHECKS_H_

#include <string>
#include <vector>

#include "report.h"

namespace tcpx::doctor {

struct PluginCheck {
  bool loaded = false;
  bool builtin = false;      // the built-in TCP plugin (TCPX_NET_PLUGIN unset)
  bool looks_tcpx = false;   // Google's GPUDirect-TCPX plugin, by name
  bool unpack_device = false;  // some device reports netDeviceType UNPACK
  std::string name, path, error;
  int devices = 0;
};
// (a) The ncclNet v7 plugin transfers would use: loads it, lists devices.
PluginCheck check_plugin(Report& r);

struct CudaCheck {
  bool available = false;
  int gpus = 0;
  std::string reason;  // why not available
};
// (b) Whether libtcpx_cuda.so loads and sees a GPU.
CudaCheck check_cuda(Report& r);

// (c) GPU-to-NIC mapping by PCI topology; returns the GPUs' PCI addresses.
std::vector<std::string> report_pci_mapping(Report& r);

struct TcpxPrereqs {
  bool rxdm_ready = false;
  bool nics_ready = false;
  bool vars_ready = false;  // plugin variables without a working default (NCCL_DYNAMIC_CHUNK_SIZE)
  std::string plugin_library;      // a GPUDirect-TCPX plugin file found, if any
  std::vector<std::string> problems;  // short reasons for the verdict
};
// (d) What GPUDirect-TCPX needs on this host: RxDM sockets, the plugin
// library, the NICs it is told to use, NCCL_DYNAMIC_CHUNK_SIZE.
TcpxPrereqs check_tcpx_prereqs(Report& r, const std::vector<std::string>& gpu_pci);

}  // namespace tcpx::doctor

#endif  // TCPX_TOOLS_DOCTOR_CHECKS_H_
