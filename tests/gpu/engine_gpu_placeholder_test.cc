// Built instead of engine_gpu_test.cc when this build has no CUDA, so the
// missing GPU coverage shows up as a skip rather than as nothing.
#include <gtest/gtest.h>

TEST(EngineGpu, TransfersWithGpuMemory) {
  GTEST_SKIP() << "built without CUDA: the GPU engine tests need nvcc at configure time "
                  "(nvcc on PATH or /usr/local/cuda, or -DTCPX_CUDA=ON)";
}
