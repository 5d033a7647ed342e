// Built instead of gpu_unpack_test.cc when this build has no CUDA, so the
// missing GPU coverage shows up as a skip rather than as nothing.
#include <gtest/gtest.h>

TEST(GpuUnpack, KernelMatchesCpuReference) {
  GTEST_SKIP() << "no CUDA device: this build has no CUDA support (configure with nvcc on PATH "
                  "or TCPX_CUDA=ON to build the GPU unpack test)";
}
