// tcpx-doctor: checks what this host offers the transfer engine and says which
// data path transfers would take.
//
// Exit status: 0 when data can move (GPUDirect-TCPX, or the built-in TCP
// plugin as a fallback); 2 when nothing can move data (the plugin does not
// load, or GPUDirect-TCPX is selected but not usable).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "checks.h"
#include "report.h"

namespace tcpx::doctor {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "; ") + x;
  return s;
}

int verdict(Report& r, const PluginCheck& plugin, const CudaCheck& cuda, const TcpxPrereqs& tcpx) {
  r.section("Verdict");
  if (!plugin.loaded) {
    r.line("VERDICT: no data path: the network plugin does not load (" + plugin.error + ")");
    return 2;
  }
  if (plugin.builtin) {
    std::vector<std::string> why;
    why.push_back(tcpx.plugin_library.empty()
                      ? "TCPX_NET_PLUGIN is not set"
                      : "TCPX_NET_PLUGIN is not set (a GPUDirect-TCPX plugin is at " + tcpx.plugin_library +
                            ": export TCPX_NET_PLUGIN=" + tcpx.plugin_library + " once the checks above pass)");
    if (!cuda.available) why.push_back("no usable CUDA device");
    why.insert(why.end(), tcpx.problems.begin(), tcpx.problems.end());
    r.line("VERDICT: TCP fallback (built-in plugin) because " + join(why));
    r.line("Ready: transfers will use the built-in TCP plugin from " + plugin.path);
    return 0;
  }
  if (plugin.looks_tcpx) {
    std::vector<std::string> why;
    if (!cuda.available) why.push_back("no usable CUDA device (" + cuda.reason + ")");
    if (!tcpx.rxdm_ready || !tcpx.nics_ready || !tcpx.vars_ready)
      for (const auto& p : tcpx.problems)
        if (p.find("plugin library") == std::string::npos) why.push_back(p);
    if (why.empty()) {
      r.line("VERDICT: TCPX (GPUDirect) via '" + plugin.name + "' from " + plugin.path);
      return 0;
    }
    r.line("VERDICT: not ready: GPUDirect-TCPX ('" + plugin.name + "') is selected but " + join(why) +
           ". Fix the [FAIL] lines above, or unset TCPX_NET_PLUGIN to use the TCP fallback.");
    return 2;
  }
  r.line("VERDICT: ncclNet plugin '" + plugin.name + "' from " + plugin.path +
         " (neither GPUDirect-TCPX nor the built-in TCP plugin)");
  return 0;
}

}  // namespace
}  // namespace tcpx::doctor

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      std::printf(
          "usage: tcpx-doctor\n"
          "Checks the network plugin, CUDA, the GPU-to-NIC PCI mapping and the GPUDirect-TCPX\n"
          "prerequisites, then says which data path transfers would take.\n"
          "Reads: TCPX_NET_PLUGIN, TCPX_CUDA_LIB, NCCL_GPUDIRECTTCPX_UNIX_CLIENT_PREFIX,\n"
          "NCCL_GPUDIRECTTCPX_SOCKET_IFNAME, NCCL_GPUDIRECTTCPX_CTRL_DEV, NCCL_SOCKET_IFNAME,\n"
          "NCCL_DYNAMIC_CHUNK_SIZE.\n"
          "Exit status: 0 ready (TCPX or the TCP fallback), 2 nothing can move data.\n");
      return 0;
    }
    std::fprintf(stderr, "tcpx-doctor: unknown argument '%s' (try --help)\n", argv[i]);
    return 2;
  }
  using namespace tcpx::doctor;
  Report r(stdout);
  char host[256] = "?";
  gethostname(host, sizeof(host) - 1);
  r.line(std::string("tcpx-doctor on ") + host);
  PluginCheck plugin = check_plugin(r);
  CudaCheck cuda = check_cuda(r);
  std::vector<std::string> gpus = report_pci_mapping(r);
  TcpxPrereqs tcpx = check_tcpx_prereqs(r, gpus);
  int rc = verdict(r, plugin, cuda, tcpx);
  std::fflush(stdout);
  return rc;
}
