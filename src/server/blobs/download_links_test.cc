#include "server/blobs/download_links.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::server {
namespace {

const DownloadGrant kGrant{.sha256 = Sha256Hex("package"),
                           .file_name = "Quell_Investigation_Package.zip",
                           .expires = 1'700'000'600'000};

TEST(DownloadLinksTest, ATokenGrantsExactlyWhatItWasIssuedFor) {
  DownloadLinks links(std::string(32, 'k'));
  auto token = links.Token(kGrant);
  ASSERT_TRUE(token.ok());
  auto grant = links.Verify(*token, kGrant.expires - 1);
  ASSERT_TRUE(grant.ok()) << grant.status().ToString();
  EXPECT_EQ(*grant, kGrant);
}

TEST(DownloadLinksTest, AnExpiredTokenIsRefused) {
  DownloadLinks links(std::string(32, 'k'));
  auto token = links.Token(kGrant);
  auto grant = links.Verify(*token, kGrant.expires);
  EXPECT_EQ(grant.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(grant.status().message().find("expired"), std::string::npos);
}

TEST(DownloadLinksTest, AnAlteredTokenOrAnotherKeyIsRefused) {
  DownloadLinks links(std::string(32, 'k'));
  std::string token = *links.Token(kGrant);
  // Every single-character change of the token is caught.
  for (size_t i = 0; i < token.size(); ++i) {
    std::string altered = token;
    altered[i] = altered[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(links.Verify(altered, 0).ok()) << i;
  }
  DownloadGrant longer = kGrant;
  longer.expires += 1'000'000;
  std::string forged = *links.Token(longer);
  forged = forged.substr(0, forged.find('.')) + token.substr(token.find('.'));
  EXPECT_EQ(links.Verify(forged, 0).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(DownloadLinks(std::string(32, 'q')).Verify(token, 0).status().code(),
            StatusCode::kPermissionDenied);
  for (std::string_view junk : {"", ".", "abc", "a.b.c", "%%%.%%%"}) {
    EXPECT_FALSE(links.Verify(junk, 0).ok()) << junk;
  }
}

TEST(DownloadLinksTest, RefusesFileNamesThatCouldBreakTheResponseHeader) {
  DownloadLinks links(std::string(32, 'k'));
  for (std::string name : {"", "a\"b.zip", "../x.zip", "a b.zip", "x\r\nSet-Cookie: y"}) {
    DownloadGrant grant = kGrant;
    grant.file_name = name;
    EXPECT_EQ(links.Token(grant).status().code(), StatusCode::kInvalidArgument) << name;
  }
}

TEST(DownloadLinksTest, TheKeyIsCreatedOncePrivatelyAndReused) {
  quell::testing::TempDir dir;
  auto first = DownloadLinks::Open(dir / "links.key");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat((dir / "links.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = DownloadLinks::Open(dir / "links.key");
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->Verify(*first->Token(kGrant), 0).ok());
}

}  // namespace
}  // namespace quell::server
