// A server's REST routes on a fresh SQLite store, called through the Router without a
// socket: the fixture every routes test builds on. Devices m1 (h-m1) and m2 (h-m2) exist;
// admin_, responder_ and viewer_ are API tokens of those roles.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/testing/temp_dir.h"
#include "server/alerts/alert_service.h"
#include "server/api/api_context.h"
#include "server/auth/api_tokens.h"
#include "server/blobs/blob_store.h"
#include "server/blobs/download_links.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell::server::testing {

class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(OpenSqliteStore(dir_ + "/q.db")).value();
    actions_ = std::make_unique<ActionCenter>(*store_, clock_);
    alerts_ = std::make_unique<AlertService>(*store_, clock_);
    api_ = std::make_unique<ApiContext>(ApiContext{*store_, *actions_, sessions_, clock_, 90'000});
    api_->alerts = alerts_.get();
    blobs_ = std::move(BlobStore::Open(dir_ + "/blobs")).value();
    api_->blobs = blobs_.get();
    api_->download_links = &links_;
    AddApiRoutes(router_, *api_);
    admin_ = CreateApiToken(*store_, clock_, "admin", Role::kAdmin)->secret;
    responder_ = CreateApiToken(*store_, clock_, "alice", Role::kResponder)->secret;
    viewer_ = CreateApiToken(*store_, clock_, "victor", Role::kViewer)->secret;
    for (const char* id : {"m1", "m2"}) {
      ASSERT_TRUE(store_->CreateDevice({.id = id,
                                        .computer_dns_name = std::string("h-") + id,
                                        .last_seen = clock_.Now()})
                      .ok());
    }
  }

  struct Reply {
    int status;
    nlohmann::json body;
  };

  Reply Call(const std::string& method, const std::string& target, const std::string& token,
             const std::string& body = "") {
    http::Response response = Raw(method, target, token, body);
    return {response.status, nlohmann::json::parse(response.body, nullptr, false)};
  }

  // The response as the router returns it (for file responses and headers).
  http::Response Raw(const std::string& method, const std::string& target,
                     const std::string& token, const std::string& body = "") {
    auto parsed = http::ParseRequestTarget(target);
    EXPECT_TRUE(parsed.ok());
    http::Request request{.method = method,
                          .target = target,
                          .path = parsed->path,
                          .query = parsed->query,
                          .path_params = {},
                          .headers = {},
                          .body = body,
                          .remote_address = "127.0.0.1"};
    if (!token.empty()) request.headers["authorization"] = "Bearer " + token;
    return router_.Dispatch(request);
  }

  // The "id" of every element of the reply's "value" array, in order.
  static std::vector<std::string> Ids(const Reply& r) {
    std::vector<std::string> ids;
    for (const auto& a : r.body["value"]) ids.push_back(a["id"]);
    return ids;
  }

  quell::testing::TempDir temp_dir_;  // declared first: removed after everything using it
  std::string dir_ = temp_dir_.path();
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  SessionRegistry sessions_;
  std::unique_ptr<ActionCenter> actions_;
  std::unique_ptr<AlertService> alerts_;
  std::unique_ptr<BlobStore> blobs_;
  DownloadLinks links_{std::string(32, 'k')};
  std::unique_ptr<ApiContext> api_;
  http::Router router_;
  std::string admin_, responder_, viewer_;
};

}  // namespace quell::server::testing
