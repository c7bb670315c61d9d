#include "common/utf8.h"

#include <gtest/gtest.h>

namespace quell {
namespace {

constexpr auto kFffd = InvalidUtf8::kReplacementCharacter;
constexpr auto kHex = InvalidUtf8::kHexEscape;

TEST(ValidUtf8Test, KeepsValidMultiByteSequences) {
  // é, €, 😀 and U+10FFFF, the highest code point.
  const std::string text = "a\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
  EXPECT_EQ(ValidUtf8(text, kFffd), text);
  EXPECT_EQ(ValidUtf8(text, kHex), text);
  EXPECT_EQ(ValidUtf8("", kHex), "");
}

TEST(ValidUtf8Test, ReplacesAStrayByte) {
  EXPECT_EQ(ValidUtf8("a\x80z", kFffd), "a\xef\xbf\xbdz");
  EXPECT_EQ(ValidUtf8("a\x80z", kHex), "a\\x80z");
  EXPECT_EQ(ValidUtf8("\xff", kHex), "\\xff");
}

TEST(ValidUtf8Test, ReplacesOverlongFormsBytewise) {
  // "/" as two bytes; each byte is replaced on its own.
  EXPECT_EQ(ValidUtf8("\xc0\xaf", kHex), "\\xc0\\xaf");
  EXPECT_EQ(ValidUtf8("\xe0\x80\xaf", kFffd), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(ValidUtf8Test, ReplacesSurrogatesAndCodePointsAboveTheRange) {
  EXPECT_EQ(ValidUtf8("\xed\xa0\x80", kHex), "\\xed\\xa0\\x80");  // U+D800
  EXPECT_EQ(ValidUtf8("\xf4\x90\x80\x80", kHex), "\\xf4\\x90\\x80\\x80");  // U+110000
}

TEST(ValidUtf8Test, ReplacesASequenceCutAtTheEnd) {
  EXPECT_EQ(ValidUtf8("ok\xe2\x82", kHex), "ok\\xe2\\x82");
  EXPECT_EQ(ValidUtf8("ok\xf0\x9f\x98", kFffd), "ok\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  // Cut in the middle: the next character survives.
  EXPECT_EQ(ValidUtf8("\xe2\x82z", kHex), "\\xe2\\x82z");
}

TEST(IncompleteUtf8TailTest, CountsOnlyAnUnfinishedSequence) {
  EXPECT_EQ(IncompleteUtf8Tail(""), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xc3\xa9"), 0u);       // complete é
  EXPECT_EQ(IncompleteUtf8Tail("a\xc3"), 1u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xe2\x82"), 2u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xf0\x9f\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xf0\x9f\x98\x80"), 0u);  // complete 😀
  EXPECT_EQ(IncompleteUtf8Tail("a\xff"), 0u);  // not a lead byte: nothing to wait for
}

TEST(Utf8ChunkSizeTest, NeverCutsACharacter) {
  const std::string text = "ab\xe2\x82\xac" "cd";  // a b € c d
  EXPECT_EQ(Utf8ChunkSize(text, 100), text.size());
  EXPECT_EQ(Utf8ChunkSize(text, 2), 2u);
  EXPECT_EQ(Utf8ChunkSize(text, 3), 2u);
  EXPECT_EQ(Utf8ChunkSize(text, 4), 2u);
  EXPECT_EQ(Utf8ChunkSize(text, 5), 5u);
  EXPECT_EQ(Utf8ChunkSize(text, 0), 0u);
}

}  // namespace
}  // namespace quell
