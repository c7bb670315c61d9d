#include <gtest/gtest.h>

#include "common/files.h"
#include "server/api/routes_test_fixture.h"

namespace quell::server {
namespace {

class DownloadRoutesTest : public testing::RoutesTest {
 protected:
  std::string Link(const std::string& sha256, UnixMillis lifetime_ms = 60'000) {
    return "/api/downloads/" + *links_.Token({.sha256 = sha256,
                                              .file_name = "Quell_Investigation_Package.zip",
                                              .expires = clock_.Now() + lifetime_ms});
  }
};

TEST_F(DownloadRoutesTest, ALiveLinkStreamsItsBlobWithoutABearerTokenAndIsAudited) {
  BlobInfo blob = *blobs_->Put("PK-zip-bytes");
  http::Response response = Raw("GET", Link(blob.sha256), "");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "application/zip");
  ASSERT_FALSE(response.file_path.empty());
  EXPECT_EQ(*ReadFile(response.file_path), "PK-zip-bytes");
  ASSERT_EQ(response.headers.size(), 1u);
  EXPECT_EQ(response.headers[0].second,
            "attachment; filename=\"Quell_Investigation_Package.zip\"");

  auto audit = *store_->ListAudit({.target = blob.sha256});
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].operation, "blob.downloaded");
  EXPECT_NE(audit[0].details_json.find("127.0.0.1"), std::string::npos);
}

TEST_F(DownloadRoutesTest, AnExpiredOrAlteredLinkIsRefused) {
  BlobInfo blob = *blobs_->Put("evidence");
  std::string link = Link(blob.sha256, 1000);
  clock_.Advance(1000);
  Reply expired = Call("GET", link, admin_);
  EXPECT_EQ(expired.status, 403);
  EXPECT_NE(expired.body.dump().find("expired"), std::string::npos);

  std::string altered = Link(blob.sha256);
  altered[altered.size() - 3] = altered[altered.size() - 3] == 'x' ? 'y' : 'x';
  EXPECT_EQ(Call("GET", altered, "").status, 403);
  EXPECT_EQ(Call("GET", "/api/downloads/not-a-link", "").status, 404);
  EXPECT_TRUE(store_->ListAudit({.target = blob.sha256})->empty());
}

TEST_F(DownloadRoutesTest, ALinkToABlobNoLongerStoredIs404) {
  BlobInfo blob = *blobs_->Put("short-lived");
  std::string link = Link(blob.sha256);
  ASSERT_TRUE(blobs_->Remove(blob.sha256).ok());
  EXPECT_EQ(Call("GET", link, "").status, 404);
}

}  // namespace
}  // namespace quell::server
