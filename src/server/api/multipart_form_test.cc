#include "server/api/multipart_form.h"

#include <gtest/gtest.h>

#include <string>

namespace quell::server::http {
namespace {

constexpr char kType[] = "multipart/form-data; boundary=XyZ";

// A body the way curl -F sends it.
std::string Body(const std::vector<std::string>& parts, std::string_view boundary = "XyZ") {
  std::string body;
  for (const std::string& part : parts) body += "--" + std::string(boundary) + "\r\n" + part + "\r\n";
  return body + "--" + std::string(boundary) + "--\r\n";
}

std::string Field(const std::string& name, const std::string& value) {
  return "Content-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value;
}

std::string Message(const Result<std::vector<MultipartPart>>& result) {
  return result.status().message();
}

TEST(MultipartBoundaryTest, ReadsPlainAndQuotedBoundaries) {
  EXPECT_EQ(*MultipartBoundary("multipart/form-data; boundary=abc-123"), "abc-123");
  EXPECT_EQ(*MultipartBoundary("Multipart/Form-Data;BOUNDARY=\"a b:c\""), "a b:c");
  EXPECT_EQ(*MultipartBoundary("multipart/form-data; charset=utf-8; boundary=x; "), "x");
}

TEST(MultipartBoundaryTest, RefusesOtherTypesAndBadBoundaries) {
  for (const char* type : {"application/octet-stream", "", "multipart/mixed; boundary=x",
                           "multipart/form-data", "multipart/form-data; boundary=",
                           "multipart/form-data; boundary=\"x", "multipart/form-data; boundary=a{b",
                           "multipart/form-data; boundary=\"ab \"",
                           "multipart/form-data; boundary=a; boundary=b"}) {
    auto boundary = MultipartBoundary(type);
    EXPECT_EQ(boundary.status().code(), StatusCode::kInvalidArgument) << type;
  }
  EXPECT_FALSE(MultipartBoundary("multipart/form-data; boundary=" + std::string(71, 'a')).ok());
  EXPECT_TRUE(MultipartBoundary("multipart/form-data; boundary=" + std::string(70, 'a')).ok());
  EXPECT_NE(MultipartBoundary("text/plain").status().message().find("multipart/form-data"),
            std::string::npos);
}

TEST(MultipartFormTest, ParsesFieldsAndAFileWithBinaryContent) {
  const std::string binary("\0\r\n--Xy\r\n-\xff", 12);
  std::string body = "preamble to ignore\r\n" +
                     Body({Field("Description", "collects logs"),
                           "Content-Disposition: form-data; name=\"file\"; filename=\"collect.sh\"\r\n"
                           "Content-Type: application/octet-stream\r\n\r\n" + binary,
                           Field("OverrideIfExists", "true")}) +
                     "epilogue";
  auto parts = ParseMultipartForm(kType, body);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].name, "Description");
  EXPECT_EQ((*parts)[0].data, "collects logs");
  EXPECT_FALSE((*parts)[0].has_filename);
  EXPECT_EQ((*parts)[0].content_type, "");
  EXPECT_EQ((*parts)[1].name, "file");
  EXPECT_TRUE((*parts)[1].has_filename);
  EXPECT_EQ((*parts)[1].filename, "collect.sh");
  EXPECT_EQ((*parts)[1].content_type, "application/octet-stream");
  EXPECT_EQ((*parts)[1].data, binary);
  EXPECT_EQ((*parts)[2].data, "true");
  // Views into the body, not copies.
  EXPECT_GE((*parts)[1].data.data(), body.data());
  EXPECT_LE((*parts)[1].data.data() + (*parts)[1].data.size(), body.data() + body.size());
}

TEST(MultipartFormTest, EmptyValuesQuotedEscapesAndTransportPadding) {
  std::string body =
      "--XyZ  \r\nContent-Disposition: form-data; name=\"a\\\"b\"; filename=\"\"\r\n\r\n"
      "\r\n--XyZ\t\r\n" + Field("empty", "") + "\r\n--XyZ--";
  auto parts = ParseMultipartForm(kType, body);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "a\"b");
  EXPECT_TRUE((*parts)[0].has_filename);
  EXPECT_EQ((*parts)[0].filename, "");
  EXPECT_EQ((*parts)[0].data, "");
  EXPECT_EQ((*parts)[1].data, "");
}

TEST(MultipartFormTest, MissingBoundaryInBodyIsRefused) {
  auto parts = ParseMultipartForm(kType, Body({Field("a", "1")}, "Other"));
  EXPECT_EQ(parts.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(Message(parts).find("no boundary line '--XyZ'"), std::string::npos) << Message(parts);
  EXPECT_FALSE(ParseMultipartForm(kType, "").ok());
}

TEST(MultipartFormTest, UnterminatedBodyIsRefused) {
  std::string full = Body({Field("a", "1"), Field("b", "2")});
  // Every truncation of a valid body fails, and says why.
  for (size_t n = 0; n + 2 < full.size(); ++n) {
    auto parts = ParseMultipartForm(kType, full.substr(0, n));
    EXPECT_EQ(parts.status().code(), StatusCode::kInvalidArgument) << n;
  }
  auto parts = ParseMultipartForm(kType, "--XyZ\r\n" + Field("a", "1") + "\r\n--XyZ\r\n");
  EXPECT_NE(Message(parts).find("closing boundary '--XyZ--'"), std::string::npos)
      << Message(parts);
  parts = ParseMultipartForm(kType, "--XyZ\r\n" + Field("file", "data without end"));
  EXPECT_NE(Message(parts).find("part 1 ('file')"), std::string::npos) << Message(parts);
}

TEST(MultipartFormTest, PartWithoutContentDispositionIsRefused) {
  auto parts = ParseMultipartForm(
      kType, Body({Field("a", "1"), "Content-Type: text/plain\r\n\r\nhello"}));
  EXPECT_EQ(parts.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(Message(parts).find("part 2 has no Content-Disposition"), std::string::npos)
      << Message(parts);
  // No headers at all.
  EXPECT_FALSE(ParseMultipartForm(kType, Body({"\r\nhello"})).ok());
  // Not form-data, or no name.
  EXPECT_FALSE(
      ParseMultipartForm(kType, Body({"Content-Disposition: attachment; name=\"a\"\r\n\r\nx"}))
          .ok());
  EXPECT_FALSE(ParseMultipartForm(kType, Body({"Content-Disposition: form-data\r\n\r\nx"})).ok());
  EXPECT_FALSE(
      ParseMultipartForm(kType, Body({"Content-Disposition: form-data; name=\"\"\r\n\r\nx"})).ok());
}

TEST(MultipartFormTest, HeadersOverTheLimitAreRefused) {
  std::string long_header = "X-Padding: " + std::string(8 << 10, 'p') + "\r\n";
  auto parts = ParseMultipartForm(kType, Body({long_header + Field("a", "1")}));
  EXPECT_EQ(parts.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(Message(parts).find("headers exceed 8192 bytes"), std::string::npos)
      << Message(parts);
  // Just under the limit is fine.
  std::string fits = "X-Padding: " + std::string((8 << 10) - 200, 'p') + "\r\n";
  EXPECT_TRUE(ParseMultipartForm(kType, Body({fits + Field("a", "1")})).ok());
}

TEST(MultipartFormTest, MoreThan32PartsAreRefused) {
  std::vector<std::string> fields(32, Field("f", "v"));
  EXPECT_TRUE(ParseMultipartForm(kType, Body(fields)).ok());
  fields.push_back(Field("f", "v"));
  auto parts = ParseMultipartForm(kType, Body(fields));
  EXPECT_EQ(parts.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(Message(parts).find("more than 32 parts"), std::string::npos) << Message(parts);
}

TEST(MultipartFormTest, MalformedStructureIsRefused) {
  // Text after a boundary that is neither CRLF nor "--".
  EXPECT_FALSE(ParseMultipartForm(kType, "--XyZjunk\r\n" + Field("a", "1") + "\r\n--XyZ--").ok());
  // A header line without a colon, and a folded one.
  EXPECT_FALSE(ParseMultipartForm(kType, Body({"Bad header\r\n" + Field("a", "1")})).ok());
  EXPECT_FALSE(ParseMultipartForm(
                   kType, Body({"Content-Disposition: form-data;\r\n name=\"a\"\r\n\r\nx"}))
                   .ok());
  // A body of only the closing boundary has no parts.
  EXPECT_FALSE(ParseMultipartForm(kType, "--XyZ--\r\n").ok());
  // Two dispositions.
  EXPECT_FALSE(ParseMultipartForm(kType, Body({"Content-Disposition: form-data; name=a\r\n" +
                                               Field("b", "1")}))
                   .ok());
}

}  // namespace
}  // namespace quell::server::http
