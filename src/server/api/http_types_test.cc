#include "server/api/http_types.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace quell::server::http {
namespace {

TEST(ParseRequestTargetTest, DecodesODataQuery) {
  auto target = ParseRequestTarget(
      "/api/machineactions?$filter=status%20eq%20%27Pending%27&$top=10");
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  EXPECT_EQ(target->path, "/api/machineactions");
  EXPECT_EQ(target->query.at("$filter"), "status eq 'Pending'");
  EXPECT_EQ(target->query.at("$top"), "10");
  EXPECT_EQ(target->query.size(), 2u);
}

TEST(ParseRequestTargetTest, PlusIsSpaceInQueryOnly) {
  auto target = ParseRequestTarget("/a+b?q=x+y&flag&&e=");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->path, "/a+b");
  EXPECT_EQ(target->query.at("q"), "x y");
  EXPECT_EQ(target->query.at("flag"), "");
  EXPECT_EQ(target->query.at("e"), "");
}

TEST(ParseRequestTargetTest, SplitsSegmentsBeforeDecoding) {
  auto target = ParseRequestTarget("/files/a%2Fb/c%20d/");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->path, "/files/a/b/c d/");
  EXPECT_EQ(target->segments, (std::vector<std::string>{"files", "a/b", "c d"}));

  EXPECT_TRUE(ParseRequestTarget("/")->segments.empty());
  EXPECT_EQ(ParseRequestTarget("/a//b")->segments, (std::vector<std::string>{"a", "", "b"}));
}

TEST(ParseRequestTargetTest, RejectsMalformedTargets) {
  for (const char* bad : {"", "api", "http://x/api", "/a%", "/a%2", "/a%zz", "/a%00",
                          "/a?x=%0", "/a?x=1&x=2", "/a#frag"}) {
    auto target = ParseRequestTarget(bad);
    EXPECT_FALSE(target.ok()) << bad;
    if (!target.ok()) {
      EXPECT_EQ(target.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(ResponseTest, ErrorHasCodeAndMessage) {
  Response response = Response::Error(404, "NotFound", "no machine 'x'");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/json");
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["error"]["code"], "NotFound");
  EXPECT_EQ(body["error"]["message"], "no machine 'x'");
}

TEST(ResponseTest, JsonToleratesInvalidUtf8) {
  Response response = Response::Json(200, {{"name", std::string("bad\xff")}});
  EXPECT_EQ(response.status, 200);
  EXPECT_NO_THROW(nlohmann::json::parse(response.body));
}

TEST(ResponseTest, FromStatusMapsCodes) {
  struct Case {
    Status status;
    int http;
  };
  for (const Case& c : {Case{InvalidArgument("x"), 400}, Case{FailedPrecondition("x"), 400},
                        Case{Unauthenticated("x"), 401}, Case{PermissionDenied("x"), 403},
                        Case{NotFound("x"), 404}, Case{AlreadyExists("x"), 409},
                        Case{ResourceExhausted("x"), 429}, Case{Unavailable("x"), 503},
                        Case{DeadlineExceeded("x"), 504}, Case{Internal("x"), 500}}) {
    Response response = Response::FromStatus(c.status);
    EXPECT_EQ(response.status, c.http) << c.status.ToString();
    auto body = nlohmann::json::parse(response.body);
    EXPECT_EQ(body["error"]["code"], StatusCodeName(c.status.code()));
  }
  auto body = nlohmann::json::parse(Response::FromStatus(NotFound("no machine 'm1'")).body);
  EXPECT_EQ(body["error"]["message"], "no machine 'm1'");
}

TEST(ResponseTest, InternalMessageIsHidden) {
  Response response = Response::FromStatus(Internal("sqlite: disk I/O error at /var/lib/x"));
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body.find("sqlite"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(response.body)["error"]["message"], "internal error");
}

TEST(RequestTest, HeaderReturnsEmptyWhenAbsent) {
  Request request;
  request.headers["x-api-version"] = "1";
  EXPECT_EQ(request.Header("x-api-version"), "1");
  EXPECT_EQ(request.Header("authorization"), "");
}

}  // namespace
}  // namespace quell::server::http
