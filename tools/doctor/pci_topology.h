// PciTopology: which NIC sits closest to which GPU, judged by how much of
// their sysfs device paths (root complex / switch / bridge chain) they share.
#ifndef TCPX_TOOLS_DOCTOR_PCI_TOPOLOGY_H_
#define TCPX_TOOLS_DOCTOR_PCI_TOPOLOGY_H_

#include <string>
#include <vector>

namespace tcpx::doctor {

struct PciDevice {
  std::string name;   // "eth1", or the PCI address for GPUs
  std::string bdf;    // "0000:04:00.0"
  std::string path;   // resolved sysfs path, /sys/devices/pci0000:00/.../0000:04:00.0
};

// NVIDIA display/3D controllers (vendor 0x10de, class 0x0300xx/0x0302xx)
// under `sysfs_root`/bus/pci/devices, in PCI address order.
std::vector<PciDevice> find_gpus(const std::string& sysfs_root = "/sys");
// Network interfaces backed by a PCI device (virtual ones are skipped).
std::vector<PciDevice> find_nics(const std::string& sysfs_root = "/sys");

// Number of leading path components two sysfs device paths share.
int shared_depth(const std::string& a, const std::string& b);

struct NicMatch {
  int index = -1;          // into the nics vector; -1 when there is none
  std::string shared_at;   // deepest shared component (a bridge or root)
  bool same_root = false;  // under the same PCI root complex at least
};
NicMatch closest_nic(const PciDevice& gpu, const std::vector<PciDevice>& nics);

}  // namespace tcpx::doctor

#endif  // TCPX_TOOLS_DOCTOR_PCI_TOPOLOGY_H_
