// The plugin loader (src/net/transport.cc) against real shared objects: the
// built-in plugin, a library without the symbol, a missing path, and a
// library that exports only ncclNetPlugin_v8.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "harness/conformance_fixture.h"
#include "net/transport.h"

namespace tcpx::conformance {
namespace {

using net::Transport;

TEST(NetLoaderTest, LoadsThePluginUnderTest) {
  std::string path = plugin_under_test();
  std::shared_ptr<Transport> t;
  Status s = Transport::load(path, &t);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_FALSE(t->name().empty());
  int ndev = 0;
  EXPECT_TRUE(t->devices(&ndev).ok());
  EXPECT_GE(ndev, 1);
}

TEST(NetLoaderTest, LibraryWithoutTheSymbolIsNotFound) {
  std::shared_ptr<Transport> t;
  Status s = Transport::load(TCPX_DUMMY_NO_SYMBOL_PATH, &t);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.to_string();
  EXPECT_NE(s.message().find("ncclNetPlugin_v7"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(TCPX_DUMMY_NO_SYMBOL_PATH), std::string::npos) << s.message();
  EXPECT_EQ(t, nullptr);
}

TEST(NetLoaderTest, MissingPathIsNamedInTheError) {
  const std::string path = "/nonexistent/tcpx-conformance/libnope.so";
  std::shared_ptr<Transport> t;
  Status s = Transport::load(path, &t);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.to_string();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
}

TEST(NetLoaderTest, V8OnlyLibraryIsRejectedAsSuch) {
  std::shared_ptr<Transport> t;
  Status s = Transport::load(TCPX_DUMMY_V8_ONLY_PATH, &t);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("only"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("ncclNetPlugin_v8"), std::string::npos) << s.message();
  EXPECT_EQ(t, nullptr);
}

}  // namespace
}  // namespace tcpx::conformance
