#include "common/base64.h"

#include <gtest/gtest.h>

namespace quell {
namespace {

TEST(Base64Test, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 70; ++i) {
    auto decoded = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(decoded.ok()) << i;
    EXPECT_EQ(*decoded, bytes);
    auto url = Base64UrlDecode(Base64UrlEncode(bytes));
    ASSERT_TRUE(url.ok()) << i;
    EXPECT_EQ(*url, bytes);
    bytes.push_back(static_cast<char>(i * 37 + 250));
  }
}

TEST(Base64Test, KnownVectors) {
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(*Base64UrlDecode("-_8"), "\xfb\xff");
}

TEST(Base64Test, RefusesMalformedText) {
  EXPECT_FALSE(Base64Decode("abc").ok());
  EXPECT_FALSE(Base64Decode("ab!d").ok());
  EXPECT_FALSE(Base64UrlDecode("Zm9vYg==").ok());  // padding is not part of the URL form
  EXPECT_FALSE(Base64UrlDecode("a+b/").ok());      // the standard alphabet's specials
  EXPECT_FALSE(Base64UrlDecode("abcde").ok());     // no encoding has this length
  EXPECT_FALSE(Base64UrlDecode("-_9").ok());       // "-_8" with an unused bit set
}

}  // namespace
}  // namespace quell
