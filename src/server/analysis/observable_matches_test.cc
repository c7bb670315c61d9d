#include "server/analysis/observable_matches.h"

#include <gtest/gtest.h>

namespace quell::server {
namespace {

using nlohmann::json;

Indicator Make(IndicatorType type, std::string value,
               IndicatorAction action = IndicatorAction::kBlock) {
  return {.id = value, .type = type, .value = std::move(value), .action = action};
}

json Report() {
  return {{"observables",
           {{"domains", {"cdn.evil.example", "benign.example"}},
            {"ips", {"203.0.113.7", "192.0.2.1"}},
            {"droppedFiles", {{{"path", "/tmp/x"}, {"sha256", std::string(64, 'A')}}}}}}};
}

std::vector<std::string> Values(const std::vector<ObservableMatch>& matches) {
  std::vector<std::string> out;
  for (const ObservableMatch& m : matches) out.push_back(m.kind + ":" + m.value);
  return out;
}

TEST(ObservableMatchesTest, BlockIndicatorsMatchDomainsWithSubdomainsAddressesNetworksAndFiles) {
  std::vector<Indicator> indicators = {Make(IndicatorType::kDomainName, "EVIL.example"),
                                       Make(IndicatorType::kIpAddress, "203.0.113.0/24"),
                                       Make(IndicatorType::kFileSha256, std::string(64, 'a'))};
  EXPECT_EQ(Values(MatchBlockedObservables(Report(), indicators, 0)),
            (std::vector<std::string>{"domain:cdn.evil.example", "ip:203.0.113.7",
                                      "droppedFile:" + std::string(64, 'a')}));
}

TEST(ObservableMatchesTest, OnlyBlockingUnexpiredIndicatorsCount) {
  Indicator expired = Make(IndicatorType::kIpAddress, "192.0.2.1");
  expired.expiration_time = 1000;
  std::vector<Indicator> indicators = {
      Make(IndicatorType::kDomainName, "evil.example", IndicatorAction::kAllowed),
      Make(IndicatorType::kDomainName, "benign.example", IndicatorAction::kAudit), expired};
  EXPECT_TRUE(MatchBlockedObservables(Report(), indicators, 2000).empty());
  EXPECT_EQ(MatchBlockedObservables(Report(), indicators, 500).size(), 1u);
}

TEST(ObservableMatchesTest, ADomainDoesNotMatchAMereSuffixOfItsName) {
  std::vector<Indicator> indicators = {Make(IndicatorType::kDomainName, "il.example"),
                                       Make(IndicatorType::kIpAddress, "203.0.113.70")};
  EXPECT_TRUE(MatchBlockedObservables(Report(), indicators, 0).empty());
}

TEST(ObservableMatchesTest, AMalformedReportMatchesNothing) {
  std::vector<Indicator> indicators = {Make(IndicatorType::kDomainName, "evil.example")};
  EXPECT_TRUE(MatchBlockedObservables(json::array(), indicators, 0).empty());
  EXPECT_TRUE(MatchBlockedObservables({{"observables", 3}}, indicators, 0).empty());
  EXPECT_TRUE(
      MatchBlockedObservables({{"observables", {{"domains", {1, 2}}}}}, indicators, 0).empty());
}

}  // namespace
}  // namespace quell::server
