// GET /api/files/{sha256}, POST /api/files/{sha256}/download and collectFile by hash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/files.h"
#include "common/hash.h"
#include "server/api/routes_test_fixture.h"

namespace quell::server {
namespace {

using nlohmann::json;

class FilesRoutesTest : public testing::RoutesTest {
 protected:
  // A file m1 sent for a CollectFile action, as the gateway and the action center record it.
  std::string Collect(const std::string& content, const std::string& name = "dropper") {
    Result<BlobInfo> blob = blobs_->Put(content);
    EXPECT_TRUE(blob.ok());
    Reply created = Call("POST", "/api/machines/m1/collectFile", responder_,
                         R"({"Comment":"triage","Path":"/tmp/)" + name + R"("})");
    EXPECT_EQ(created.status, 201) << created.body.dump();
    const std::string action = created.body["id"];
    EXPECT_TRUE(store_->PutActionArtifact({.action_id = action, .name = "file",
                                           .sha256 = blob->sha256, .size = blob->size,
                                           .created = clock_.Now()})
                    .ok());
    json result = {{"Path", "/tmp/" + name}, {"FileName", name}, {"Size", blob->size},
                   {"Sha256", blob->sha256}, {"Sha1", std::string(40, '1')},
                   {"Md5", std::string(32, '2')}, {"Artifact", "file"}};
    EXPECT_TRUE(actions_->ApplyAgentReport("m1", {.action_id = action,
                                                  .event = ActionEvent::kAgentSucceeded,
                                                  .result_json = result.dump()})
                    .ok());
    return blob->sha256;
  }
};

TEST_F(FilesRoutesTest, ACollectedFileIsDescribedWithWhereItCameFrom) {
  const std::string sha = Collect("#!/bin/sh\necho hi\n");

  Reply got = Call("GET", "/api/files/" + sha, viewer_);

  ASSERT_EQ(got.status, 200) << got.body.dump();
  EXPECT_EQ(got.body["sha256"], sha);
  EXPECT_EQ(got.body["collected"], true);
  EXPECT_EQ(got.body["size"], 18);
  EXPECT_EQ(got.body["sha1"], std::string(40, '1'));
  EXPECT_EQ(got.body["fileName"], "dropper");
  ASSERT_EQ(got.body["collections"].size(), 1u);
  EXPECT_EQ(got.body["collections"][0]["computerDnsName"], "h-m1");
  EXPECT_EQ(got.body["collections"][0]["path"], "/tmp/dropper");
  EXPECT_EQ(got.body["collections"][0]["requestor"], "alice");
}

TEST_F(FilesRoutesTest, AFileOnlySeenIsDescribedAsNotCollected) {
  const std::string sha(64, 'e');
  ASSERT_TRUE(store_->RecordFileSightings({{.device_id = "m2", .sha256 = sha, .path = "/usr/bin/x",
                                            .source = "scan", .first_seen = clock_.Now(),
                                            .last_seen = clock_.Now()}})
                  .ok());
  Reply got = Call("GET", "/api/files/" + sha, viewer_);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body["collected"], false);
  EXPECT_EQ(got.body["seenOn"][0]["filePath"], "/usr/bin/x");

  EXPECT_EQ(Call("GET", "/api/files/" + std::string(64, 'f'), viewer_).status, 404);
  EXPECT_EQ(Call("GET", "/api/files/not-a-hash", viewer_).status, 400);
}

TEST_F(FilesRoutesTest, CollectByHashSendsTheDevicesNewestPath) {
  const std::string sha(64, 'c');
  ASSERT_TRUE(store_->RecordFileSightings(
                        {{.device_id = "m1", .sha256 = sha, .path = "/old/x", .source = "exec",
                          .first_seen = 1, .last_seen = 1},
                         {.device_id = "m1", .sha256 = sha, .path = "/new/x", .source = "exec",
                          .first_seen = 2, .last_seen = 2},
                         {.device_id = "m2", .sha256 = sha, .path = "/other/x", .source = "exec",
                          .first_seen = 3, .last_seen = 3}})
                  .ok());
  Reply created = Call("POST", "/api/machines/m1/collectFile", responder_,
                       R"({"Comment":"c","Sha256":")" + sha + R"("})");
  ASSERT_EQ(created.status, 201) << created.body.dump();
  json params = json::parse(store_->GetAction(created.body["id"])->parameters_json);
  EXPECT_EQ(params["Path"], "/new/x");
  EXPECT_EQ(params["Sha256"], sha);

  Reply unseen = Call("POST", "/api/machines/m2/collectFile", responder_,
                      R"({"Comment":"c","Sha256":")" + std::string(64, 'd') + R"("})");
  EXPECT_EQ(unseen.status, 400);
  EXPECT_NE(unseen.body.dump().find("has not been seen on this device"), std::string::npos);
  EXPECT_EQ(Call("POST", "/api/machines/m1/collectFile", responder_, R"({"Comment":"c"})").status,
            400);
}

TEST_F(FilesRoutesTest, DownloadIsAnEncryptedZipThatIsGoneAfterItIsOpened) {
  const std::string sha = Collect("evidence bytes");

  http::Response zip = Raw("POST", "/api/files/" + sha + "/download", responder_,
                           R"({"Password":"correct horse","Comment":"to the lab"})");

  ASSERT_EQ(zip.status, 200) << zip.body;
  EXPECT_EQ(zip.content_type, "application/zip");
  EXPECT_TRUE(zip.remove_file_when_open);
  ASSERT_TRUE(std::filesystem::exists(zip.file_path));
  // WinZip AES: the local header's method is 99 and the content is not in the clear.
  Result<std::string> bytes = ReadFile(zip.file_path);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->substr(0, 4), std::string("PK\x03\x04", 4));
  EXPECT_EQ(static_cast<unsigned char>((*bytes)[8]), 99);
  EXPECT_EQ(bytes->find("evidence bytes"), std::string::npos);
  ::unlink(zip.file_path.c_str());

  auto audit = store_->ListAudit({.target = sha});
  ASSERT_TRUE(audit.ok());
  ASSERT_FALSE(audit->empty());
  EXPECT_EQ(audit->back().operation, "file.downloaded");
  EXPECT_EQ(audit->back().actor, "alice");
  EXPECT_EQ(audit->back().details_json.find("correct horse"), std::string::npos);
}

TEST_F(FilesRoutesTest, DownloadNeedsAGoodPasswordACollectedFileAndAResponder) {
  const std::string sha = Collect("x");
  const std::string url = "/api/files/" + sha + "/download";
  Reply none = Call("POST", url, responder_, R"({"Comment":"c"})");
  EXPECT_EQ(none.status, 400);
  EXPECT_NE(none.body.dump().find("'Password' is required"), std::string::npos);
  EXPECT_EQ(Call("POST", url, responder_, R"({"Password":"short"})").status, 400);
  EXPECT_EQ(Call("POST", url, responder_, R"({"Password":"tab\tinside!"})").status, 400);
  EXPECT_EQ(Call("POST", url, viewer_, R"({"Password":"long enough"})").status, 403);
  Reply missing = Call("POST", "/api/files/" + std::string(64, 'a') + "/download", responder_,
                       R"({"Password":"long enough"})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.dump().find("collect it first"), std::string::npos);
}

}  // namespace
}  // namespace quell::server
