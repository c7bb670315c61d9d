#include "server/api/router.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

namespace quell::server::http {
namespace {

// A handler that answers with its own name and the captured parameters.
Handler Named(std::string name) {
  return [name](Request& request) {
    return Response::Json(200, {{"route", name}, {"params", request.path_params}});
  };
}

Response Call(const Router& router, std::string method, std::string target) {
  Request request;
  request.method = std::move(method);
  request.target = std::move(target);
  return router.Dispatch(request);
}

nlohmann::json Body(const Response& response) { return nlohmann::json::parse(response.body); }

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/api/machines", Named("list"));
    router_.Add("GET", "/api/machines/{id}", Named("get"));
    router_.Add("GET", "/api/machines/findbytag", Named("findbytag"));
    router_.Add("POST", "/api/machines/{id}/isolate", Named("isolate"));
    router_.Add("POST", "/api/machines/{id}/StopAndQuarantineFile", Named("quarantine"));
    router_.Add("GET",
                "/api/machineactions/{id}/GetLiveResponseResultDownloadLink(index={index})",
                Named("download"));
  }
  Router router_;
};

TEST_F(RouterTest, MatchesLiteralAndCaptures) {
  Response response = Call(router_, "POST", "/api/machines/m-42/isolate");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(Body(response)["route"], "isolate");
  EXPECT_EQ(Body(response)["params"]["id"], "m-42");
  EXPECT_EQ(Body(Call(router_, "GET", "/api/machines"))["route"], "list");
  EXPECT_EQ(Body(Call(router_, "GET", "/api/machines/"))["route"], "list");
}

TEST_F(RouterTest, LiteralsMatchCaseInsensitively) {
  Response response = Call(router_, "POST", "/API/Machines/m1/stopAndQuarantineFile");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(Body(response)["route"], "quarantine");
  EXPECT_EQ(Body(response)["params"]["id"], "m1");  // captures keep their case
}

TEST_F(RouterTest, LiteralBeatsCaptureWhateverTheOrder) {
  EXPECT_EQ(Body(Call(router_, "GET", "/api/machines/findbytag"))["route"], "findbytag");
  EXPECT_EQ(Body(Call(router_, "GET", "/api/machines/FindByTag"))["route"], "findbytag");
  EXPECT_EQ(Body(Call(router_, "GET", "/api/machines/other"))["route"], "get");
}

TEST_F(RouterTest, CaptureInsideSegment) {
  Response response = Call(
      router_, "GET", "/api/machineactions/a1/getliveresponseresultdownloadlink(index=3)");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(Body(response)["params"]["id"], "a1");
  EXPECT_EQ(Body(response)["params"]["index"], "3");
  // The capture must not be empty.
  EXPECT_EQ(Call(router_, "GET",
                 "/api/machineactions/a1/GetLiveResponseResultDownloadLink(index=)")
                .status,
            404);
}

TEST_F(RouterTest, CapturesArePercentDecodedAndFillQuery) {
  Request request;
  request.method = "GET";
  request.target = "/api/machines/a%2Fb?$top=5";
  Response response = router_.Dispatch(request);
  EXPECT_EQ(Body(response)["params"]["id"], "a/b");
  EXPECT_EQ(request.path, "/api/machines/a/b");
  EXPECT_EQ(request.query.at("$top"), "5");
}

TEST_F(RouterTest, UnknownPathIs404) {
  Response response = Call(router_, "GET", "/api/nothing");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(Body(response)["error"]["code"], "NotFound");
  EXPECT_EQ(Call(router_, "GET", "/api/machines/m1/isolate/extra").status, 404);
  EXPECT_EQ(Call(router_, "POST", "/api/machines//isolate").status, 404);  // empty capture
}

TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  Response response = Call(router_, "DELETE", "/api/machines/m1/isolate");
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(Body(response)["error"]["code"], "MethodNotAllowed");
  ASSERT_EQ(response.headers.size(), 1u);
  EXPECT_EQ(response.headers[0].first, "Allow");
  EXPECT_EQ(response.headers[0].second, "POST");

  router_.Add("DELETE", "/api/machines/{id}", Named("delete"));
  Response both = Call(router_, "PUT", "/api/machines/m1");
  EXPECT_EQ(both.status, 405);
  EXPECT_EQ(both.headers[0].second, "DELETE, GET");
}

TEST_F(RouterTest, MalformedTargetIs400) {
  Response response = Call(router_, "GET", "/api/machines/%zz");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(Body(response)["error"]["code"], "InvalidArgument");
}

TEST_F(RouterTest, HandlerExceptionIs500) {
  router_.Add("GET", "/boom", [](Request&) -> Response {
    throw std::runtime_error("secret detail");
  });
  router_.Add("GET", "/boom2", [](Request&) -> Response { throw 42; });
  for (const char* target : {"/boom", "/boom2"}) {
    Response response = Call(router_, "GET", target);
    EXPECT_EQ(response.status, 500);
    EXPECT_EQ(Body(response)["error"]["message"], "internal error");
    EXPECT_EQ(response.body.find("secret"), std::string::npos);
  }
}

TEST_F(RouterTest, BodyLimitIsTheMatchedRoutesOwnOrTheFallback) {
  router_.Add("POST", "/api/libraryfiles", Named("upload"), {.max_body_bytes = 5000});
  router_.Add("POST", "/api/machines/{id}/runliveresponse", Named("run"),
              {.max_body_bytes = 7000});
  EXPECT_EQ(router_.BodyLimit("POST", "/api/libraryfiles", 100), 5000u);
  EXPECT_EQ(router_.BodyLimit("POST", "/api/LibraryFiles/?x=1", 100), 5000u);
  EXPECT_EQ(router_.BodyLimit("POST", "/api/machines/m1/runliveresponse", 100), 7000u);
  // Routes without their own limit, other methods, unknown paths and malformed targets get
  // the fallback.
  EXPECT_EQ(router_.BodyLimit("POST", "/api/machines/m1/isolate", 100), 100u);
  EXPECT_EQ(router_.BodyLimit("GET", "/api/libraryfiles", 100), 100u);
  EXPECT_EQ(router_.BodyLimit("POST", "/api/nothing", 100), 100u);
  EXPECT_EQ(router_.BodyLimit("POST", "/api/libraryfiles%zz", 100), 100u);
  EXPECT_EQ(router_.BodyLimit("POST", "*", 100), 100u);
  // The limit does not change what Dispatch runs.
  EXPECT_EQ(Body(Call(router_, "POST", "/api/libraryfiles"))["route"], "upload");
}

TEST_F(RouterTest, WebSocketRoutesMatchLikeOthersAndAnswerPlainRequests) {
  router_.AddWebSocket("/api/machines/{id}/liveresponse",
                       [](Request&) { return UpgradeDecision{}; }, {.max_message_bytes = 77});
  router_.AddWebSocket("/api/machines/findbytag/liveresponse",
                       [](Request&) { return UpgradeDecision{}; });
  router_.Add("GET", "/api/machines/special/liveresponse", Named("ordinary"));

  Request request;
  request.target = "/API/machines/m%2D1/LiveResponse?token=x";
  const WebSocketRoute* route = router_.MatchWebSocket(request);
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->pattern, "/api/machines/{id}/liveresponse");
  EXPECT_EQ(route->options.max_message_bytes, 77u);
  EXPECT_EQ(request.path, "/API/machines/m-1/LiveResponse");
  EXPECT_EQ(request.path_params.at("id"), "m-1");
  EXPECT_EQ(request.query.at("token"), "x");

  // The most literal route wins, WebSocket or not.
  Request literal;
  literal.target = "/api/machines/findbytag/liveresponse";
  ASSERT_NE(router_.MatchWebSocket(literal), nullptr);
  EXPECT_EQ(router_.MatchWebSocket(literal)->pattern, "/api/machines/findbytag/liveresponse");
  EXPECT_TRUE(literal.path_params.empty());
  Request ordinary;
  ordinary.target = "/api/machines/special/liveresponse";
  EXPECT_EQ(router_.MatchWebSocket(ordinary), nullptr);
  EXPECT_EQ(Body(Call(router_, "GET", "/api/machines/special/liveresponse"))["route"],
            "ordinary");
  for (const char* target : {"/api/machines", "/api/nothing", "/api/machines/%zz/liveresponse"}) {
    Request other;
    other.target = target;
    EXPECT_EQ(router_.MatchWebSocket(other), nullptr) << target;
  }

  // Without the upgrade: 426 for GET, 405 (Allow: GET) for the rest.
  Response plain = Call(router_, "GET", "/api/machines/m1/liveresponse");
  EXPECT_EQ(plain.status, 426);
  EXPECT_EQ(Body(plain)["error"]["code"], "UpgradeRequired");
  Response post = Call(router_, "POST", "/api/machines/m1/liveresponse");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers[0].second, "GET");
}

TEST(RouterDeathTest, MalformedPatternAborts) {
  Router router;
  EXPECT_DEATH(router.Add("GET", "/api/{", Named("x")), "invalid route pattern");
  EXPECT_DEATH(router.Add("GET", "api/x", Named("x")), "invalid route pattern");
  EXPECT_DEATH(router.Add("GET", "/a/{x}{y}", Named("x")), "invalid route pattern");
  EXPECT_DEATH(router.Add("GET", "/a/{}", Named("x")), "invalid route pattern");
}

}  // namespace
}  // namespace quell::server::http
