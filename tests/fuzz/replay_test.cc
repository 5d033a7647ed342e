// Runs one fuzz target's body (linked into this program) over its committed
// seed corpus and its regression inputs, as an ordinary test: every build,
// gcc included, replays what the fuzzers found. A broken invariant aborts
// with the input's file name printed just before.
//
// FUZZ_TARGET, FUZZ_CORPUS_DIR and FUZZ_REGRESSION_DIR come from CMake.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

// The files of `dir`, sorted so the order (and a failure) is reproducible;
// none when the folder does not exist.
std::vector<fs::path> inputs_in(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "README.md") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

size_t replay(const fs::path& dir) {
  size_t n = 0;
  for (const fs::path& file : inputs_in(dir)) {
    std::ifstream in(file, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replaying %s (%zu bytes)\n", file.c_str(), bytes.size());
    // libFuzzer never passes a null pointer; neither do we for empty files.
    static const uint8_t kEmpty = 0;
    EXPECT_EQ(LLVMFuzzerTestOneInput(bytes.empty() ? &kEmpty : bytes.data(), bytes.size()), 0) << file;
    ++n;
  }
  return n;
}

TEST(FuzzReplay, SeedCorpus) {
  // An empty corpus means the seeds were not generated (tests/fuzz/README.md).
  EXPECT_GT(replay(FUZZ_CORPUS_DIR), 0u) << "no seed inputs in " << FUZZ_CORPUS_DIR << " for " << FUZZ_TARGET;
}

TEST(FuzzReplay, Regressions) { replay(FUZZ_REGRESSION_DIR); }

}  // namespace
