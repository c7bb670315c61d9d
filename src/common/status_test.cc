#include "common/status.h"

#include <gtest/gtest.h>

namespace quell {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  QUELL_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, ContextIsPrepended) {
  Status s = NotFound("no such device").WithContext("isolate");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "isolate: no such device");
}

TEST(StatusTest, ErrnoMapsToCodes) {
  EXPECT_EQ(ErrnoStatus("open x", ENOENT).code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus("open x", EACCES).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus("write x", ENOSPC).code(), StatusCode::kResourceExhausted);
  EXPECT_NE(ErrnoStatus("open x", ENOENT).message().find("open x"), std::string::npos);
}

TEST(ResultTest, PropagatesErrors) {
  EXPECT_EQ(Quarter(8).value(), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
}

}  // namespace
}  // namespace quell
