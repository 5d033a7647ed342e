// (d) GPUDirect-TCPX prerequisites that can be checked from this host: the
// RxDM daemon's UNIX sockets, Google's plugin library, the NICs the plugin is
// told to use, and the plugin variables whose defaults do not work. (A devmem-TCP capable kernel and the peer host cannot
// be checked from here.)
#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "checks.h"
#include "net/nccl_net_v7.h"

namespace tcpx::doctor {
namespace {

// The TCPX plugin's own default when NCCL_GPUDIRECTTCPX_UNIX_CLIENT_PREFIX is
// unset, and the directory Google's RxDM deployments share (--uds_path).
constexpr const char* kPluginDefaultPrefix = "/tmp";
constexpr const char* kRxdmConventionalPrefix = "/run/tcpx";

std::vector<std::string> split_list(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

// RxDM sockets the plugin connects to: <prefix>/get_gpu_fd_<gpu pci address>.
std::vector<std::string> rxdm_sockets(const std::string& dir) {
  std::vector<std::string> found;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return found;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind("get_gpu_fd_", 0) != 0) continue;
    struct stat st{};
    if (stat((dir + "/" + n).c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) found.push_back(n);
  }
  closedir(d);
  return found;
}

std::string interface_list() {
  std::string all;
  DIR* d = opendir("/sys/class/net");
  if (d == nullptr) return all;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") all += (all.empty() ? "" : ",") + n;
  }
  closedir(d);
  return all;
}

void check_rxdm(Report& r, const std::vector<std::string>& gpu_pci, TcpxPrereqs* p) {
  const char* env = std::getenv("NCCL_GPUDIRECTTCPX_UNIX_CLIENT_PREFIX");
  const std::string prefix = env != nullptr ? env : kPluginDefaultPrefix;
  auto socks = rxdm_sockets(prefix);
  r.info(std::string("RxDM socket directory: ") + prefix +
         (env ? " (NCCL_GPUDIRECTTCPX_UNIX_CLIENT_PREFIX)" : " (the plugin's default; NCCL_GPUDIRECTTCPX_UNIX_CLIENT_PREFIX is unset)"));
  if (!socks.empty()) {
    std::string names;
    for (const auto& s : socks) names += (names.empty() ? "" : ", ") + s;
    r.ok("RxDM sockets in " + prefix + ": " + names);
    if (!gpu_pci.empty() && socks.size() < gpu_pci.size())
      r.note(std::to_string(socks.size()) + " RxDM GPU socket(s) for " + std::to_string(gpu_pci.size()) +
             " GPU(s): GPUs without one cannot receive over TCPX");
    p->rxdm_ready = true;
    return;
  }
  // Not where the plugin will look: maybe the daemon runs with the usual
  // directory and only the variable is missing.
  if (env == nullptr && !rxdm_sockets(kRxdmConventionalPrefix).empty()) {
    r.fail(std::string("RxDM sockets exist in ") + kRxdmConventionalPrefix + " but the plugin will look in " + prefix,
           std::string("export NCCL_GPUDIRECTTCPX_UNIX_CLIENT_PREFIX=") + kRxdmConventionalPrefix);
    p->problems.push_back("NCCL_GPUDIRECTTCPX_UNIX_CLIENT_PREFIX is not set to the RxDM directory");
    return;
  }
  r.fail("no RxDM sockets (get_gpu_fd_*) in " + prefix + (exists(prefix) ? "" : " (directory missing)"),
         "run Google's receive-datapath-manager (RxDM) container with --uds_path pointing at a shared "
         "directory (usually /run/tcpx), mount it here, and export NCCL_GPUDIRECTTCPX_UNIX_CLIENT_PREFIX to it");
  p->problems.push_back("the RxDM daemon is not reachable (no sockets in " + prefix + ")");
}

void check_plugin_library(Report& r, TcpxPrereqs* p) {
  std::vector<std::string> dirs;
  if (const char* llp = std::getenv("LD_LIBRARY_PATH")) dirs = split_list(llp, ':');
  for (const char* d : {"/usr/local/tcpx/lib64", "/var/lib/tcpx/lib64", "/usr/local/nvidia/lib64",
                        "/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"})
    dirs.push_back(d);
  bool any = false;
  for (const char* file : {"libnccl-net-tcpx.so", "libnccl-net.so"}) {
    for (const auto& dir : dirs) {
      const std::string path = dir + "/" + file;
      if (!exists(path)) continue;
      any = true;
      // Inspect without init(): the table's name is static data. The handle
      // is not closed, since plugins' static state may not survive dlclose.
      void* dl = dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL);
      if (dl == nullptr) {
        const char* e = dlerror();
        r.fail("found " + path + " but it does not load: " + (e ? e : "?"),
               "install what it links against (ldd " + path + "), usually the NVIDIA driver and CUDA libraries");
        continue;
      }
      auto* v = static_cast<const ncclNet_v7_t*>(dlsym(dl, NCCL_NET_PLUGIN_SYMBOL_V7));
      std::string name = v != nullptr && v->name != nullptr ? v->name : "";
      if (v == nullptr) {
        r.note("found " + path + ": it does not export " NCCL_NET_PLUGIN_SYMBOL_V7);
      } else if (name.find("TCPX") != std::string::npos || name.find("GPUDirect") != std::string::npos) {
        r.ok("GPUDirect-TCPX plugin '" + name + "' found: " + path);
        if (p->plugin_library.empty()) p->plugin_library = path;
      } else {
        r.note("found " + path + ": ncclNet v7 plugin '" + name + "', not GPUDirect-TCPX");
      }
    }
  }
  if (p->plugin_library.empty()) {
    if (!any)
      r.fail("no libnccl-net-tcpx.so or libnccl-net.so in LD_LIBRARY_PATH or the usual TCPX directories",
             "install Google's nccl-plugin-gpudirecttcpx (on A3 VMs it is usually in /var/lib/tcpx/lib64 or "
             "/usr/local/tcpx/lib64) and set TCPX_NET_PLUGIN to its path");
    p->problems.push_back("no GPUDirect-TCPX plugin library found");
  }
}

// NCCL_DYNAMIC_CHUNK_SIZE: Google's plugin (v3.1.9) reads it at init with a
// default of 0 and sends min(chunk size, bytes left) per step, so unset or 0
// means no byte ever moves: transfers hang. Its own examples use 524288.
bool check_dynamic_chunk_size(Report& r, TcpxPrereqs* p) {
  const char* v = std::getenv("NCCL_DYNAMIC_CHUNK_SIZE");
  const std::string fix = "export NCCL_DYNAMIC_CHUNK_SIZE=524288";
  if (v == nullptr || v[0] == '\0') {
    r.fail("NCCL_DYNAMIC_CHUNK_SIZE is not set: the TCPX plugin then moves data in chunks of 0 bytes and "
           "every transfer hangs", fix);
    p->problems.push_back("NCCL_DYNAMIC_CHUNK_SIZE is not set");
    return false;
  }
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || n <= 0 || n > INT_MAX) {
    r.fail(std::string("NCCL_DYNAMIC_CHUNK_SIZE=") + v + " is not a positive integer: with 0 (or a value the "
           "plugin rejects, which restores its default of 0) every transfer hangs", fix);
    p->problems.push_back(std::string("NCCL_DYNAMIC_CHUNK_SIZE=") + v + " is not a positive integer");
    return false;
  }
  r.ok(std::string("NCCL_DYNAMIC_CHUNK_SIZE=") + v + " (bytes per TCPX send step)");
  return true;
}

// Checks one NIC variable; returns false when it names a missing interface.
bool check_nic_variable(Report& r, const char* var, const std::string& all) {
  const char* v = std::getenv(var);
  if (v == nullptr || v[0] == '\0') {
    r.info(std::string(var) + " is not set");
    return true;
  }
  std::string list = v;
  if (list[0] == '^') {
    // NCCL syntax: a leading ^ excludes the listed prefixes; nothing to verify.
    r.info(std::string(var) + "=" + list + " (exclusion list)");
    return true;
  }
  bool good = true;
  for (std::string name : split_list(list, ',')) {
    if (!name.empty() && name[0] == '=') name.erase(0, 1);  // NCCL's exact-match marker
    const std::string sys = "/sys/class/net/" + name;
    if (exists(sys)) {
      std::ifstream st(sys + "/operstate");
      std::string state;
      st >> state;
      r.ok(std::string(var) + ": interface " + name + " exists (operstate " + (state.empty() ? "?" : state) + ")");
    } else {
      good = false;
      r.fail(std::string(var) + " names interface '" + name + "', which does not exist here",
             std::string("set ") + var + " to interfaces of this host: " + all);
    }
  }
  return good;
}

}  // namespace

TcpxPrereqs check_tcpx_prereqs(Report& r, const std::vector<std::string>& gpu_pci) {
  TcpxPrereqs p;
  r.section("GPUDirect-TCPX prerequisites (needed only for the TCPX data path)");
  check_plugin_library(r, &p);
  check_rxdm(r, gpu_pci, &p);
  const std::string all = interface_list();
  bool good = true;
  for (const char* var : {"NCCL_GPUDIRECTTCPX_SOCKET_IFNAME", "NCCL_GPUDIRECTTCPX_CTRL_DEV", "NCCL_SOCKET_IFNAME"})
    good = check_nic_variable(r, var, all) && good;
  const char* ctrl = std::getenv("NCCL_GPUDIRECTTCPX_CTRL_DEV");
  if (ctrl == nullptr || ctrl[0] == '\0')
    // Not fatal: the plugin then keeps its control sockets on the data NICs.
    r.note("NCCL_GPUDIRECTTCPX_CTRL_DEV is not set: the TCPX plugin uses its default control sockets; Google's "
           "setups put control traffic on the host NIC (export NCCL_GPUDIRECTTCPX_CTRL_DEV=eth0 on A3)");
  const char* data_nics = std::getenv("NCCL_GPUDIRECTTCPX_SOCKET_IFNAME");
  if (data_nics == nullptr || data_nics[0] == '\0') {
    r.fail("NCCL_GPUDIRECTTCPX_SOCKET_IFNAME is not set: the TCPX plugin does not know its data NICs",
           "export NCCL_GPUDIRECTTCPX_SOCKET_IFNAME=<the GPU NICs, e.g. eth1,eth2,eth3,eth4 on A3> and "
           "NCCL_GPUDIRECTTCPX_CTRL_DEV=<the host NIC, e.g. eth0>");
    p.problems.push_back("NCCL_GPUDIRECTTCPX_SOCKET_IFNAME is not set");
    good = false;
  } else if (!good) {
    p.problems.push_back("a NIC named in the TCPX variables does not exist");
  }
  p.nics_ready = good;
  p.vars_ready = check_dynamic_chunk_size(r, &p);
  return p;
}

}  // namespace tcpx::doctor
