// The modes every conformance test runs in. "HostBounce" asks the built-in
// plugin to treat host memory like CUDA memory (bounce buffer + loadMeta), so
// the unpack protocol is exercised without a GPU; "Cuda" needs a GPU.
#include "harness/conformance_fixture.h"

namespace tcpx::conformance {

const std::vector<ModeParam>& all_modes() {
  static const std::vector<ModeParam> modes = {
      {"HostDirect", false, MemKind::kHost},
      {"HostBounce", true, MemKind::kHost},
      {"Cuda", false, MemKind::kCuda},
  };
  return modes;
}

INSTANTIATE_TEST_SUITE_P(Plugin, NetModeTest, ::testing::ValuesIn(all_modes()), mode_name);
INSTANTIATE_TEST_SUITE_P(Plugin, NetPairTest, ::testing::ValuesIn(all_modes()), mode_name);

}  // namespace tcpx::conformance
