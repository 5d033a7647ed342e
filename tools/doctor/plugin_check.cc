// (a) The network plugin: the one TCPX_NET_PLUGIN names, else the built-in
// TCP plugin; loaded exactly as the engine loads it.
#include <cstdlib>
#include <memory>
#include <string>

#include "checks.h"
#include "net/transport.h"

namespace tcpx::doctor {
namespace {

std::string ptr_support_text(int p) {
  std::string s;
  if (p & NCCL_PTR_HOST) s += "HOST";
  if (p & NCCL_PTR_CUDA) s += s.empty() ? "CUDA" : "|CUDA";
  if (p & NCCL_PTR_DMABUF) s += s.empty() ? "DMABUF" : "|DMABUF";
  return s.empty() ? "none" : s;
}

bool contains_nocase(std::string hay, std::string needle) {
  for (auto& c : hay) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto& c : needle) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return hay.find(needle) != std::string::npos;
}

}  // namespace

PluginCheck check_plugin(Report& r) {
  PluginCheck pc;
  r.section("Network plugin (ncclNet v7)");
  const char* env = std::getenv("TCPX_NET_PLUGIN");
  const std::string requested = env != nullptr ? env : "";
  pc.builtin = requested.empty();
  if (pc.builtin)
    r.info("source: built-in TCP plugin (TCPX_NET_PLUGIN is not set): " + net::Transport::builtin_plugin_path());
  else
    r.info("source: TCPX_NET_PLUGIN=" + requested);

  std::shared_ptr<net::Transport> t;
  Status s = net::Transport::load(requested, &t);
  if (!s.ok()) {
    pc.error = s.to_string();
    r.fail("plugin failed to load: " + pc.error,
           pc.builtin ? "build the built-in plugin (cmake --build <build dir> --target tcpx_net_tcp) and keep "
                        "libtcpx_net_tcp.so next to the binaries or in ../lib, or set TCPX_NET_PLUGIN to a v7 plugin"
                      : "point TCPX_NET_PLUGIN at a file exporting ncclNetPlugin_v7 whose dependencies resolve "
                        "(check with: ldd " + requested + "), or unset it to use the built-in TCP plugin");
    return pc;
  }
  pc.loaded = true;
  pc.name = t->name();
  pc.path = t->path();
  pc.looks_tcpx = !pc.builtin && (contains_nocase(pc.name, "tcpx") || contains_nocase(pc.name, "gpudirect"));
  r.ok("loaded '" + pc.name + "' from " + pc.path + " (ABI ncclNetPlugin_v7)");

  s = t->devices(&pc.devices);
  if (!s.ok()) {
    r.fail("devices() failed: " + s.to_string(), "run with TCPX_LOG_LEVEL=INFO to see the plugin's own messages");
    pc.devices = 0;
    return pc;
  }
  if (pc.devices == 0) r.fail("the plugin reports no network devices", "check the interfaces the plugin is told to use (below)");
  for (int d = 0; d < pc.devices; ++d) {
    ncclNetProperties_v7_t p{};
    s = t->properties(d, &p);
    if (!s.ok()) {
      r.fail("device " + std::to_string(d) + ": getProperties failed: " + s.to_string(), "");
      continue;
    }
    const bool unpack = p.netDeviceType == NCCL_NET_DEVICE_UNPACK;
    pc.unpack_device = pc.unpack_device || unpack;
    char ver[16];
    std::snprintf(ver, sizeof(ver), "0x%x", p.netDeviceVersion);
    r.info("device " + std::to_string(d) + ": name " + (p.name ? p.name : "(null)") + ", pciPath " +
           (p.pciPath ? p.pciPath : "(null)") + ", speed " + std::to_string(p.speed) + " Mbps, ptrSupport " +
           ptr_support_text(p.ptrSupport) + ", netDeviceType " + (unpack ? "UNPACK" : "HOST") + " version " + ver +
           ", maxRecvs " + std::to_string(p.maxRecvs) + ", maxComms " + std::to_string(p.maxComms));
  }
  return pc;
}

}  // namespace tcpx::doctor
