#include "server/gateway/file_sightings.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace quell::server {
namespace {

quell::v1::FileSighting Sighting(std::string sha256, std::string path, std::string source) {
  quell::v1::FileSighting s;
  s.set_sha256(std::move(sha256));
  s.set_path(std::move(path));
  s.set_source(std::move(source));
  return s;
}

TEST(FileSightingsTest, KeepsWellFormedEntriesLowercasedAndStampsServerTime) {
  quell::v1::FileSightings msg;
  auto* s = msg.add_sightings();
  *s = Sighting(std::string(64, 'A'), "/tmp/with space\nand newline", "exec");
  s->set_sha1(std::string(40, 'B'));
  s->set_time_unix_ms(1);  // the agent's clock is not trusted
  ParsedSightings parsed = ParseFileSightings("dev-1", msg, 5000);
  ASSERT_EQ(parsed.valid.size(), 1u);
  EXPECT_EQ(parsed.dropped, 0u);
  const FileSighting& f = parsed.valid[0];
  EXPECT_EQ(f.device_id, "dev-1");
  EXPECT_EQ(f.sha256, std::string(64, 'a'));
  EXPECT_EQ(f.sha1, std::string(40, 'b'));
  EXPECT_EQ(f.md5, "");
  EXPECT_EQ(f.path, "/tmp/with space\nand newline");
  EXPECT_EQ(f.first_seen, 5000);
  EXPECT_EQ(f.last_seen, 5000);
}

TEST(FileSightingsTest, DropsMalformedEntriesAndKeepsTheRest) {
  quell::v1::FileSightings msg;
  *msg.add_sightings() = Sighting(std::string(63, 'a'), "/x", "exec");   // short hash
  *msg.add_sightings() = Sighting(std::string(64, 'g'), "/x", "exec");   // not hex
  *msg.add_sightings() = Sighting(std::string(64, 'a'), "relative", "exec");
  *msg.add_sightings() = Sighting(std::string(64, 'a'), std::string("/a\0b", 4), "scan");
  *msg.add_sightings() = Sighting(std::string(64, 'a'), "/x", "rumour");
  auto* bad_md5 = msg.add_sightings();
  *bad_md5 = Sighting(std::string(64, 'a'), "/x", "scan");
  bad_md5->set_md5("123");
  *msg.add_sightings() = Sighting(std::string(64, 'c'), "/ok", "scan");
  ParsedSightings parsed = ParseFileSightings("dev-1", msg, 1);
  EXPECT_EQ(parsed.dropped, 6u);
  ASSERT_EQ(parsed.valid.size(), 1u);
  EXPECT_EQ(parsed.valid[0].path, "/ok");
}

TEST(FileSightingsTest, TakesAtMostTheCapFromOneMessage) {
  quell::v1::FileSightings msg;
  for (size_t i = 0; i < kMaxSightingsPerMessage + 5; ++i) {
    *msg.add_sightings() = Sighting(std::string(64, 'a'), "/f" + std::to_string(i), "exec");
  }
  ParsedSightings parsed = ParseFileSightings("d", msg, 1);
  EXPECT_EQ(parsed.valid.size(), kMaxSightingsPerMessage);
  EXPECT_EQ(parsed.dropped, 5u);
}

TEST(FileSightingsTest, FileEvidenceOfADetectionIsASighting) {
  quell::v1::Detection d;
  d.set_detection_source("Antivirus");
  d.set_evidence_json(nlohmann::json::array({
      {{"fileDetails", {{"fileName", "eicar.com"}, {"filePath", "/tmp"},
                        {"sha256", std::string(64, 'a')}}}},
      {{"archiveMemberPath", "x/eicar.com"},
       {"fileDetails", {{"fileName", "a.zip"}, {"filePath", "/home"},
                        {"sha256", std::string(64, 'b')}}}},
      {{"userAccount", {{"accountName", "root"}}}},
  }).dump());
  auto sightings = SightingsFromDetection("dev", d, 7);
  ASSERT_EQ(sightings.size(), 1u);
  EXPECT_EQ(sightings[0].path, "/tmp/eicar.com");
  EXPECT_EQ(sightings[0].source, "scan");
  EXPECT_EQ(sightings[0].last_seen, 7);
  d.set_detection_source("ExecutionRestriction");
  EXPECT_EQ(SightingsFromDetection("dev", d, 7)[0].source, "exec");
  d.set_evidence_json("not json");
  EXPECT_TRUE(SightingsFromDetection("dev", d, 7).empty());
}

}  // namespace
}  // namespace quell::server
