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
