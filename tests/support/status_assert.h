// gtest assertions on a tcpx::Status that print its code and message:
//   ASSERT_OK(ep->connect(...));   EXPECT_OK(ep->wait(x, 1000)) << "xfer " << x;
#ifndef TCPX_TESTS_SUPPORT_STATUS_ASSERT_H_
#define TCPX_TESTS_SUPPORT_STATUS_ASSERT_H_

#include <gtest/gtest.h>

#include "tcpx/status.h"

namespace tcpx::test {

// Lets one macro take a Status by value or by reference without copying twice.
inline ::testing::AssertionResult status_is_ok(const char* expr, const ::tcpx::Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " failed: " << s.to_string();
}

}  // namespace tcpx::test

#define ASSERT_OK(expr) ASSERT_TRUE(::tcpx::test::status_is_ok(#expr, (expr)))
#define EXPECT_OK(expr) EXPECT_TRUE(::tcpx::test::status_is_ok(#expr, (expr)))

#endif  // TCPX_TESTS_SUPPORT_STATUS_ASSERT_H_
