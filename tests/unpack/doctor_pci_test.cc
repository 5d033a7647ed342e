// tcpx-doctor's GPU-to-NIC mapping over a fake sysfs tree: two PCIe switches,
// each with one GPU and one NIC, plus a virtio NIC on the root and a virtual
// interface with no device.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "pci_topology.h"

namespace tcpx::doctor {
namespace {

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tcpx_sysfs_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    const std::string rc = "/devices/pci0000:00";
    // Switch A (00:01.0 -> 01:00.0): GPU 02:00.0 and NIC 03:00.0 (eth1).
    add_pci(rc + "/0000:00:01.0/0000:01:00.0/0000:02:00.0", "0x10de", "0x030200");
    add_pci(rc + "/0000:00:01.0/0000:01:00.0/0000:03:00.0", "0x1ae0", "0x020000");
    // Switch B (00:02.0 -> 11:00.0): GPU 12:00.0 (VGA class) and NIC 13:00.0 (eth2).
    add_pci(rc + "/0000:00:02.0/0000:11:00.0/0000:12:00.0", "0x10de", "0x030000");
    add_pci(rc + "/0000:00:02.0/0000:11:00.0/0000:13:00.0", "0x1ae0", "0x020000");
    // An NVIDIA audio function: not a GPU.
    add_pci(rc + "/0000:00:02.0/0000:11:00.0/0000:12:00.1", "0x10de", "0x040300");
    // virtio NIC: the net device hangs one level below the PCI function.
    add_pci(rc + "/0000:00:04.0", "0x1af4", "0x020000");
    mkdirs(root_ + rc + "/0000:00:04.0/virtio1");
    add_net("eth1", rc + "/0000:00:01.0/0000:01:00.0/0000:03:00.0");
    add_net("eth2", rc + "/0000:00:02.0/0000:11:00.0/0000:13:00.0");
    add_net("eth0", rc + "/0000:00:04.0/virtio1");
    mkdirs(root_ + "/class/net/lo");  // no device link
  }
  void TearDown() override { std::system(("rm -rf '" + root_ + "'").c_str()); }

  void mkdirs(const std::string& p) {
    for (size_t i = 1; i <= p.size(); ++i)
      if (i == p.size() || p[i] == '/') mkdir(p.substr(0, i).c_str(), 0755);
  }
  void add_pci(const std::string& dev_path, const char* vendor, const char* cls) {
    mkdirs(root_ + dev_path);
    std::ofstream(root_ + dev_path + "/vendor") << vendor << "\n";
    std::ofstream(root_ + dev_path + "/class") << cls << "\n";
    mkdirs(root_ + "/bus/pci/devices");
    std::string bdf = dev_path.substr(dev_path.rfind('/') + 1);
    ASSERT_EQ(symlink((root_ + dev_path).c_str(), (root_ + "/bus/pci/devices/" + bdf).c_str()), 0);
  }
  void add_net(const std::string& name, const std::string& dev_path) {
    mkdirs(root_ + "/class/net/" + name);
    ASSERT_EQ(symlink((root_ + dev_path).c_str(), (root_ + "/class/net/" + name + "/device").c_str()), 0);
  }

  std::string root_;
};

TEST_F(FakeSysfs, FindsNvidiaGpusOnly) {
  auto gpus = find_gpus(root_);
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].bdf, "0000:02:00.0");
  EXPECT_EQ(gpus[1].bdf, "0000:12:00.0");
}

TEST_F(FakeSysfs, FindsPciNicsIncludingVirtio) {
  auto nics = find_nics(root_);
  ASSERT_EQ(nics.size(), 3u);  // lo has no device
  EXPECT_EQ(nics[0].name, "eth0");
  EXPECT_EQ(nics[0].bdf, "0000:00:04.0");
  EXPECT_EQ(nics[1].name, "eth1");
  EXPECT_EQ(nics[2].name, "eth2");
}

TEST_F(FakeSysfs, EachGpuMapsToTheNicUnderItsSwitch) {
  auto gpus = find_gpus(root_);
  auto nics = find_nics(root_);
  ASSERT_EQ(gpus.size(), 2u);
  NicMatch a = closest_nic(gpus[0], nics);
  ASSERT_GE(a.index, 0);
  EXPECT_EQ(nics[a.index].name, "eth1");
  EXPECT_EQ(a.shared_at, "0000:01:00.0");
  EXPECT_TRUE(a.same_root);
  NicMatch b = closest_nic(gpus[1], nics);
  ASSERT_GE(b.index, 0);
  EXPECT_EQ(nics[b.index].name, "eth2");
  EXPECT_EQ(b.shared_at, "0000:11:00.0");
}

TEST(PciTopology, SharedDepthAndNoNics) {
  EXPECT_EQ(shared_depth("/sys/devices/pci0000:00/a/b", "/sys/devices/pci0000:00/a/c"), 4);
  EXPECT_EQ(shared_depth("/x", "/y"), 0);
  PciDevice gpu{"g", "0000:04:00.0", "/sys/devices/pci0000:00/0000:04:00.0"};
  EXPECT_EQ(closest_nic(gpu, {}).index, -1);
  NicMatch m = closest_nic(gpu, {{"eth9", "0000:80:00.0", "/sys/devices/pci0000:80/0000:80:00.0"}});
  EXPECT_EQ(m.index, 0);
  EXPECT_FALSE(m.same_root);
}

}  // namespace
}  // namespace tcpx::doctor
