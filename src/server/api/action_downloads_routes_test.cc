#include <gtest/gtest.h>

#include "common/files.h"
#include "server/api/routes_test_fixture.h"

namespace quell::server {
namespace {

class ActionDownloadRoutesTest : public testing::RoutesTest {
 protected:
  // A CollectInvestigationPackage action on m1, moved to `status`; with Succeeded, the agent
  // "uploaded" `package` first, as ArtifactTransfer records it.
  std::string Collect(ActionStatus status, const std::string& package = "PK\x03\x04package") {
    Reply created = Call("POST", "/api/machines/m1/collectInvestigationPackage", responder_,
                         R"({"Comment":"after alert 7"})");
    EXPECT_EQ(created.status, 201) << created.body.dump();
    const std::string id = created.body["id"];
    MachineAction action = *store_->GetAction(id);
    if (status == ActionStatus::kSucceeded) {
      BlobInfo blob = *blobs_->Put(package);
      EXPECT_TRUE(store_->PutActionArtifact({.action_id = id,
                                             .name = "investigation-package.zip",
                                             .sha256 = blob.sha256,
                                             .size = blob.size,
                                             .created = clock_.Now()})
                      .ok());
      action.result_json = R"({"artifactName":"investigation-package.zip"})";
    }
    action.status = status;
    EXPECT_TRUE(store_->UpdateAction(action, ActionStatus::kPending).ok());
    return id;
  }
};

TEST_F(ActionDownloadRoutesTest, ASucceededCollectionGivesALinkThatDownloadsThePackage) {
  const std::string id = Collect(ActionStatus::kSucceeded);
  Reply uri = Call("GET", "/api/machineactions/" + id + "/GetPackageUri", responder_);
  ASSERT_EQ(uri.status, 200) << uri.body.dump();
  const std::string link = uri.body["value"];
  ASSERT_TRUE(link.starts_with("/api/downloads/")) << link;  // no Host header in this test
  EXPECT_EQ(uri.body["expirationDateTimeUtc"], FormatIso8601(clock_.Now() + 600'000));

  http::Response file = Raw("GET", link, "");
  ASSERT_EQ(file.status, 200);
  EXPECT_EQ(*ReadFile(file.file_path), "PK\x03\x04package");
  EXPECT_EQ(file.headers[0].second, "attachment; filename=\"h-m1_Investigation_Package.zip\"");
  auto audit = *store_->ListAudit({.target = id});
  EXPECT_EQ(audit.back().operation, "package.link_issued");
  EXPECT_EQ(audit.back().actor, "alice");
}

TEST_F(ActionDownloadRoutesTest, TheLinkStopsWorkingAfterItsLifetime) {
  const std::string id = Collect(ActionStatus::kSucceeded);
  const std::string link = Call("GET", "/api/machineactions/" + id + "/getPackageUri",
                                responder_).body["value"];
  clock_.Advance(600'000);
  EXPECT_EQ(Call("GET", link, "").status, 403);
  // A new call gives a new working link, without collecting again.
  const std::string fresh = Call("GET", "/api/machineactions/" + id + "/getPackageUri",
                                 responder_).body["value"];
  EXPECT_EQ(Raw("GET", fresh, "").status, 200);
}

TEST_F(ActionDownloadRoutesTest, NoLinkUntilTheCollectionSucceeded) {
  for (ActionStatus s : {ActionStatus::kPending, ActionStatus::kInProgress, ActionStatus::kFailed}) {
    const std::string id = Collect(s);
    Reply uri = Call("GET", "/api/machineactions/" + id + "/getPackageUri", responder_);
    EXPECT_EQ(uri.status, 404);
    EXPECT_NE(uri.body.dump().find("the action is " + std::string(ActionStatusName(s))),
              std::string::npos);
    MachineAction done = *store_->GetAction(id);  // closed, so the next one may start
    done.status = ActionStatus::kCancelled;
    ASSERT_TRUE(store_->UpdateAction(done, s).ok());
  }
  EXPECT_EQ(Call("GET", "/api/machineactions/nope/getPackageUri", responder_).status, 404);
}

TEST_F(ActionDownloadRoutesTest, OneCollectionAtATimePerDeviceAndViewersGetNoPackage) {
  const std::string id = Collect(ActionStatus::kInProgress);
  Reply second = Call("POST", "/api/machines/m1/collectInvestigationPackage", responder_,
                      R"({"Comment":"again"})");
  EXPECT_EQ(second.status, 400);
  EXPECT_EQ(Call("POST", "/api/machines/m2/collectInvestigationPackage", responder_,
                 R"({"Comment":"other device"})").status,
            201);
  EXPECT_EQ(Call("GET", "/api/machineactions/" + id + "/getPackageUri", viewer_).status, 403);
}

TEST_F(ActionDownloadRoutesTest, OtherActionTypesHaveNoPackage) {
  Reply scan = Call("POST", "/api/machines/m1/runAntiVirusScan", responder_,
                    R"({"Comment":"c","ScanType":"Quick"})");
  Reply uri = Call("GET", "/api/machineactions/" + scan.body["id"].get<std::string>() +
                              "/getPackageUri", responder_);
  EXPECT_EQ(uri.status, 404);
  EXPECT_NE(uri.body.dump().find("not CollectInvestigationPackage"), std::string::npos);
}

}  // namespace
}  // namespace quell::server

namespace quell::server {
namespace {

class LiveResponseRoutesTest : public testing::RoutesTest {
 protected:
  void SetUp() override {
    RoutesTest::SetUp();
    BlobInfo blob = *blobs_->Put("#!/bin/sh\necho triage\n");
    ASSERT_TRUE(store_->PutLibraryFile({.name = "triage.sh", .sha256 = blob.sha256,
                                        .size = blob.size, .created_by = "admin"})
                    .ok());
    script_sha256_ = blob.sha256;
  }

  static std::string Body(const std::string& commands) {
    return R"({"Comment":"investigate","Commands":)" + commands + "}";
  }

  std::string script_sha256_;
};

constexpr char kRunAndGet[] =
    R"([{"type":"RunScript","params":[{"key":"ScriptName","value":"triage.sh"},{"key":"Args","value":"-v"}]},
        {"type":"GetFile","params":[{"key":"Path","value":"/var/log/auth.log"}]}])";
constexpr char kGetOnly[] = R"([{"type":"GetFile","params":[{"key":"Path","value":"/etc/hosts"}]}])";

TEST_F(LiveResponseRoutesTest, RunningCodeNeedsAdminAndTheScriptIsPinnedByDigest) {
  Reply responder = Call("POST", "/api/machines/m1/runliveresponse", responder_, Body(kRunAndGet));
  EXPECT_EQ(responder.status, 403);
  EXPECT_NE(responder.body.dump().find("needs the admin role"), std::string::npos);

  Reply created = Call("POST", "/api/machines/m1/runliveresponse", admin_, Body(kRunAndGet));
  ASSERT_EQ(created.status, 201) << created.body.dump();
  EXPECT_EQ(created.body["type"], "LiveResponse");
  ASSERT_EQ(created.body["commands"].size(), 2u);
  EXPECT_EQ(created.body["commands"][0]["commandStatus"], "Created");
  EXPECT_EQ(created.body["commands"][1]["command"]["type"], "GetFile");
  MachineAction stored = *store_->GetAction(created.body["id"]);
  auto params = nlohmann::json::parse(stored.parameters_json);
  EXPECT_EQ(params["Library"]["triage.sh"]["sha256"], script_sha256_);
}

TEST_F(LiveResponseRoutesTest, AResponderMayGetFilesAndOneSessionPerDevice) {
  Reply first = Call("POST", "/api/machines/m1/runliveresponse", responder_, Body(kGetOnly));
  ASSERT_EQ(first.status, 201) << first.body.dump();
  Reply second = Call("POST", "/api/machines/m1/runliveresponse", responder_, Body(kGetOnly));
  EXPECT_EQ(second.status, 400);
  EXPECT_EQ(second.body["error"]["code"], "ActiveRequestAlreadyExists");
}

TEST_F(LiveResponseRoutesTest, AMissingLibraryFileAndTooManySessionsAreRefused) {
  Reply missing = Call("POST", "/api/machines/m1/runliveresponse", admin_,
                       Body(R"([{"type":"PutFile","params":[{"key":"FileName","value":"nope.bin"}]}])"));
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.dump().find("'nope.bin' does not exist"), std::string::npos);
  api_->max_live_response_sessions = 1;
  ASSERT_EQ(Call("POST", "/api/machines/m1/runliveresponse", responder_, Body(kGetOnly)).status, 201);
  Reply busy = Call("POST", "/api/machines/m2/runliveresponse", responder_, Body(kGetOnly));
  EXPECT_EQ(busy.status, 429);
}

TEST_F(LiveResponseRoutesTest, EachCommandsResultHasItsOwnLink) {
  Reply created = Call("POST", "/api/machines/m1/runliveresponse", admin_, Body(kRunAndGet));
  const std::string id = created.body["id"];
  const std::string base = "/api/machineactions/" + id + "/GetLiveResponseResultDownloadLink(index=";
  EXPECT_EQ(Call("GET", base + "1)", responder_).status, 404);  // nothing reported yet

  // What the agent reports: the script's output JSON, then the file.
  BlobInfo output = *blobs_->Put(R"({"script_name":"triage.sh","exit_code":0})");
  BlobInfo file = *blobs_->Put("auth log lines");
  ASSERT_TRUE(store_->PutActionArtifact({.action_id = id, .name = "command-0.json",
                                         .sha256 = output.sha256, .size = output.size}).ok());
  ASSERT_TRUE(store_->PutActionArtifact({.action_id = id, .name = "command-1",
                                         .sha256 = file.sha256, .size = file.size}).ok());
  MachineAction action = *store_->GetAction(id);
  action.status = ActionStatus::kSucceeded;
  action.result_json = R"({"commands":[
      {"index":0,"commandStatus":"Completed","errors":[],"artifact":"command-0.json"},
      {"index":1,"commandStatus":"Completed","errors":[],"artifact":"command-1"}]})";
  ASSERT_TRUE(store_->UpdateAction(action, ActionStatus::kPending).ok());

  Reply shown = Call("GET", "/api/machineactions/" + id, responder_);
  EXPECT_EQ(shown.body["commands"][1]["commandStatus"], "Completed");
  Reply link = Call("GET", base + "1)", responder_);
  ASSERT_EQ(link.status, 200) << link.body.dump();
  http::Response got = Raw("GET", link.body["value"], "");
  EXPECT_EQ(*ReadFile(got.file_path), "auth log lines");
  EXPECT_EQ(got.headers[0].second, "attachment; filename=\"auth.log\"");
  http::Response script = Raw("GET", Call("GET", base + "0)", responder_).body["value"], "");
  EXPECT_EQ(script.headers[0].second, "attachment; filename=\"triage.sh.output.json\"");

  EXPECT_EQ(Call("GET", base + "2)", responder_).status, 404);
  EXPECT_EQ(Call("GET", base + "x)", responder_).status, 400);
  EXPECT_EQ(Call("GET", base + "1)", viewer_).status, 403);
}

}  // namespace
}  // namespace quell::server
