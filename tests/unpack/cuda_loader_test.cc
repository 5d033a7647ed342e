// The CUDA table loader, driven with stub libraries: a good table is taken,
// and each failure (missing file, no symbol, wrong version, no device) comes
// back as a reason a person can act on. Also: what this host really has.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "asan_cuda_options.h"
#include "cuda/cuda_loader.h"
#include "cuda/cuda_ops.h"
#include "unpack/unpacker.h"

namespace tcpx::cuda {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(CudaLoader, GoodTableIsLoaded) {
  LoadResult r = load_cuda_ops({STUB_OK_PATH});
  ASSERT_NE(r.ops, nullptr) << r.reason;
  EXPECT_EQ(r.ops->version, TCPX_CUDA_OPS_VERSION);
  EXPECT_EQ(r.device_count, 2);
  EXPECT_EQ(r.path, STUB_OK_PATH);
  EXPECT_TRUE(r.reason.empty());
}

TEST(CudaLoader, MissingFileSaysSo) {
  LoadResult r = load_cuda_ops({"/nonexistent/libtcpx_cuda.so"});
  EXPECT_EQ(r.ops, nullptr);
  EXPECT_TRUE(contains(r.reason, "not found (tried /nonexistent/libtcpx_cuda.so)")) << r.reason;
}

TEST(CudaLoader, LibraryWithoutTheSymbolIsRejected) {
  // Any shared library without tcpx_cuda_ops_v1 will do: the C library.
  LoadResult r = load_cuda_ops({"libc.so.6"});
  EXPECT_EQ(r.ops, nullptr);
  EXPECT_TRUE(contains(r.reason, "does not export tcpx_cuda_ops_v1")) << r.reason;
}

TEST(CudaLoader, WrongVersionIsRejected) {
  LoadResult r = load_cuda_ops({STUB_BAD_VERSION_PATH});
  EXPECT_EQ(r.ops, nullptr);
  const std::string want = "table version " + std::to_string(TCPX_CUDA_OPS_VERSION + 1) + ", this build needs " +
                           std::to_string(TCPX_CUDA_OPS_VERSION);
  EXPECT_TRUE(contains(r.reason, want)) << r.reason;
}

TEST(CudaLoader, NoDeviceStopsTheSearchWithTheDriverError) {
  // The good stub comes second: a library that loaded but found no device is
  // the answer for this host, not a reason to try another copy.
  LoadResult r = load_cuda_ops({STUB_NO_DEVICE_PATH, STUB_OK_PATH});
  EXPECT_EQ(r.ops, nullptr);
  EXPECT_TRUE(contains(r.reason, "no CUDA device")) << r.reason;
  EXPECT_TRUE(contains(r.reason, "stub: driver too old")) << r.reason;
}

TEST(CudaLoader, LaterCandidateUsedWhenEarlierOnesAreMissing) {
  LoadResult r = load_cuda_ops({"/nonexistent/a.so", STUB_OK_PATH});
  ASSERT_NE(r.ops, nullptr) << r.reason;
  EXPECT_EQ(r.path, STUB_OK_PATH);
}

TEST(CudaLoader, EnvironmentOverrideIsTheOnlyCandidate) {
  ASSERT_EQ(setenv("TCPX_CUDA_LIB", "/opt/x/libtcpx_cuda.so", 1), 0);
  auto paths = candidate_paths();
  unsetenv("TCPX_CUDA_LIB");
  ASSERT_EQ(paths.size(), 1u);
  EXPECT_EQ(paths[0], "/opt/x/libtcpx_cuda.so");
  auto defaults = candidate_paths();
  ASSERT_GE(defaults.size(), 2u);
  EXPECT_TRUE(contains(defaults[0], "/libtcpx_cuda.so")) << defaults[0];
  EXPECT_EQ(defaults.back(), "libtcpx_cuda.so");
}

TEST(CudaLoader, ThisHostAndTheGpuUnpackerAgree) {
  const tcpxCudaOps_v1* t = ops();
  std::unique_ptr<unpack::Unpacker> u;
  Status s = unpack::make_cuda_unpacker(0, &u);
  if (t == nullptr) {
    // No GPU here: the reason is non-empty and surfaces in the factory's error.
    std::string reason = unavailable_reason();
    EXPECT_FALSE(reason.empty());
    EXPECT_EQ(s.code(), StatusCode::kUnsupported);
    EXPECT_TRUE(contains(s.message(), reason)) << s.message();
    std::printf("CUDA unavailable on this host: %s\n", reason.c_str());
  } else {
    EXPECT_STREQ(unavailable_reason(), "");
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_STREQ(u->name(), "cuda");
  }
}

}  // namespace
}  // namespace tcpx::cuda
