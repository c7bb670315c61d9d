#include "agent/indicators/allowed_file_filter.h"

#include <gtest/gtest.h>

namespace quell::agent {
namespace {

class RecordingSink final : public DetectionSink {
 public:
  void Report(Detection d) override { got.push_back(std::move(d)); }
  std::vector<Detection> got;
};

Detection ScanHit(const std::string& sha256) {
  Detection d;
  d.detector_id = "quell.av.yara";
  d.title = "'rule' YARA rule matched in x";
  d.evidence = nlohmann::json::array(
      {{{"@odata.type", "#microsoft.graph.security.fileEvidence"},
        {"fileDetails", {{"filePath", "/tmp"}, {"sha256", sha256}}}}});
  return d;
}

TEST(AllowedFileFilterTest, DropsDetectionsOfAllowedFilesOnly) {
  FakeClock clock;
  IndicatorSet set(clock);
  quell::v1::Indicator ok;
  ok.set_id("1");
  ok.set_type("FileSha256");
  ok.set_value(std::string(64, 'a'));
  ok.set_action("Allowed");
  ASSERT_TRUE(set.Upsert(ok).ok());
  quell::v1::Indicator bad = ok;
  bad.set_id("2");
  bad.set_value(std::string(64, 'b'));
  bad.set_action("Audit");
  ASSERT_TRUE(set.Upsert(bad).ok());

  RecordingSink next;
  AllowedFileFilter filter(next, [&](const FileToMatch& f) {
    return set.MatchFile(f.sha256, f.sha1, f.md5);
  });
  filter.Report(ScanHit(std::string(64, 'a')));  // allowed: suppressed
  filter.Report(ScanHit(std::string(64, 'b')));  // audit indicator: passes
  filter.Report(ScanHit(std::string(64, 'c')));  // unknown: passes
  Detection no_file;
  no_file.detector_id = "quell.diagnostic";
  filter.Report(no_file);
  ASSERT_EQ(next.got.size(), 3u);
  EXPECT_EQ(filter.suppressed(), 1u);
  EXPECT_EQ(next.got[0].evidence[0]["fileDetails"]["sha256"], std::string(64, 'b'));
}

}  // namespace
}  // namespace quell::agent
