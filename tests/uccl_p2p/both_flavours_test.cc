// Both flavours of the C API in one process: an Oct-2025 engine pair
// (libuccl_engine.so) and a newer-API pair (libuccl_p2p.so) move data side by
// side over the one shared core and plugin (libtcpx.so), interleaved and at
// the same time.
#include <gtest/gtest.h>

#include <future>

#include "nixl_agent.h"
#include "old_flavour.h"

namespace uccl_p2p_test {
namespace {

std::string new_flavour_read_roundtrip() {
  // The buffers outlive the agents: memory is deregistered (agent teardown)
  // before it is freed, as NIXL does; b's engine may still be finishing its
  // side of the READ when a sees the data.
  std::vector<uint8_t> abuf(128 * 1024, 0), bbuf(128 * 1024);
  NixlAgent a("a"), b("b");
  for (size_t i = 0; i < bbuf.size(); ++i) bbuf[i] = static_cast<uint8_t>(i * 3 + 1);
  RemoteBuffer amd, bmd;
  if (!a.ok() || !b.ok() || !a.register_buffer(abuf.data(), abuf.size(), &amd) ||
      !b.register_buffer(bbuf.data(), bbuf.size(), &bmd) || !a.connect_to("b", b.conn_info()))
    return "new flavour setup failed";
  uint64_t tid = 0;
  if (a.post(true, "b", {{abuf.data(), abuf.data(), &bmd, bmd.addr, abuf.size()}}, &tid) != 0)
    return "new flavour read_vector failed";
  if (!a.wait_and_notify("b", tid, "", 20000)) return "new flavour READ did not finish";
  return abuf == bbuf ? "" : "new flavour READ: data differs";
}

TEST(UcclP2pBothFlavours, OneAfterTheOther) {
  EXPECT_EQ(old_flavour_write_roundtrip(), "");
  EXPECT_EQ(new_flavour_read_roundtrip(), "");
  EXPECT_EQ(old_flavour_write_roundtrip(), "");
}

TEST(UcclP2pBothFlavours, AtTheSameTime) {
  auto old_run = std::async(std::launch::async, old_flavour_write_roundtrip);
  EXPECT_EQ(new_flavour_read_roundtrip(), "");
  EXPECT_EQ(old_run.get(), "");
  uccl_engine_get_notifs();  // drop this flavour's notifications
}

}  // namespace
}  // namespace uccl_p2p_test
