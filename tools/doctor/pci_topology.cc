#include "pci_topology.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace tcpx::doctor {
namespace {

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_word(const std::string& file) {
  std::ifstream in(file);
  std::string w;
  in >> w;
  return w;
}

std::string resolve(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) != nullptr ? std::string(buf) : std::string();
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// "0000:04:00.0": domain:bus:device.function, all hex.
bool is_bdf(const std::string& s) {
  unsigned d, b, dev, f;
  char tail;
  return s.size() == 12 && std::sscanf(s.c_str(), "%4x:%2x:%2x.%1x%c", &d, &b, &dev, &f, &tail) == 4;
}

// The path up to and including its last PCI address component (a virtio NIC's
// device link points one level below its PCI function).
std::string trim_to_pci(const std::string& path, std::string* bdf) {
  auto parts = split(path);
  int last = -1;
  for (int i = 0; i < static_cast<int>(parts.size()); ++i)
    if (is_bdf(parts[i])) last = i;
  if (last < 0) return "";
  std::string out;
  for (int i = 0; i <= last; ++i) out += "/" + parts[i];
  *bdf = parts[last];
  return out;
}

}  // namespace

std::vector<PciDevice> find_gpus(const std::string& sysfs_root) {
  std::vector<PciDevice> gpus;
  const std::string dir = sysfs_root + "/bus/pci/devices";
  for (const auto& bdf : list_dir(dir)) {
    const std::string dev = dir + "/" + bdf;
    if (read_word(dev + "/vendor") != "0x10de") continue;
    const std::string cls = read_word(dev + "/class");
    if (cls.rfind("0x0302", 0) != 0 && cls.rfind("0x0300", 0) != 0) continue;
    gpus.push_back(PciDevice{bdf, bdf, resolve(dev)});
  }
  return gpus;
}

std::vector<PciDevice> find_nics(const std::string& sysfs_root) {
  std::vector<PciDevice> nics;
  const std::string dir = sysfs_root + "/class/net";
  for (const auto& name : list_dir(dir)) {
    std::string real = resolve(dir + "/" + name + "/device");
    if (real.empty()) continue;  // lo, bridges, veth: no device behind them
    std::string bdf;
    std::string path = trim_to_pci(real, &bdf);
    if (path.empty()) continue;
    nics.push_back(PciDevice{name, bdf, path});
  }
  return nics;
}

int shared_depth(const std::string& a, const std::string& b) {
  auto pa = split(a), pb = split(b);
  int n = 0;
  while (n < static_cast<int>(std::min(pa.size(), pb.size())) && pa[n] == pb[n]) ++n;
  return n;
}

NicMatch closest_nic(const PciDevice& gpu, const std::vector<PciDevice>& nics) {
  NicMatch m;
  int best = -1;
  for (int i = 0; i < static_cast<int>(nics.size()); ++i) {
    int d = shared_depth(gpu.path, nics[i].path);
    if (d > best) {
      best = d;
      m.index = i;
    }
  }
  if (m.index < 0) return m;
  auto parts = split(gpu.path);
  for (int i = 0; i < best && i < static_cast<int>(parts.size()); ++i) {
    if (parts[i].rfind("pci", 0) == 0) m.same_root = true;
    m.shared_at = parts[i];
  }
  return m;
}

}  // namespace tcpx::doctor
