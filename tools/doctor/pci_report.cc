// (c) Which NIC is closest to each GPU on the PCI tree: GPUDirect-TCPX
// receives into GPU memory over PCIe, so each GPU should use the NIC under
// its own PCIe switch.
#include <string>
#include <vector>

#include "checks.h"
#include "pci_topology.h"

namespace tcpx::doctor {

std::vector<std::string> report_pci_mapping(Report& r) {
  r.section("GPU to NIC (PCI topology)");
  std::vector<PciDevice> gpus = find_gpus();
  std::vector<PciDevice> nics = find_nics();
  std::vector<std::string> gpu_bdfs;
  std::string nic_list;
  for (const auto& n : nics) nic_list += (nic_list.empty() ? "" : ", ") + n.name + " (" + n.bdf + ")";
  r.info("PCI network interfaces: " + (nic_list.empty() ? std::string("none") : nic_list));
  if (gpus.empty()) {
    r.note("no NVIDIA GPU on the PCI bus (/sys/bus/pci/devices, vendor 0x10de): nothing to map");
    return gpu_bdfs;
  }
  r.info("GPUs in PCI address order (CUDA uses this order with CUDA_DEVICE_ORDER=PCI_BUS_ID)");
  for (const auto& g : gpus) {
    gpu_bdfs.push_back(g.bdf);
    NicMatch m = closest_nic(g, nics);
    if (m.index < 0) {
      r.info("GPU " + g.bdf + " -> no PCI NIC");
      continue;
    }
    const auto& n = nics[m.index];
    std::string where = m.same_root ? "shares the PCI path up to " + m.shared_at : "different PCI root complex";
    r.info("GPU " + g.bdf + " -> " + n.name + " (" + n.bdf + "), " + where);
  }
  return gpu_bdfs;
}

}  // namespace tcpx::doctor
