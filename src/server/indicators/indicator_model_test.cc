#include "server/indicators/indicator_model.h"

#include <gtest/gtest.h>

namespace quell::server {
namespace {

using nlohmann::json;

constexpr UnixMillis kNow = 1'800'000'000'000;  // 2027-01-15

std::string Normalized(IndicatorType type, std::string_view value) {
  Result<std::string> r = NormalizeIndicatorValue(type, value);
  return r.ok() ? *r : "ERROR: " + r.status().message();
}

TEST(IndicatorValueTest, HashesAreLowercaseHexOfTheRightLength) {
  std::string sha256(64, 'A');
  EXPECT_EQ(Normalized(IndicatorType::kFileSha256, " " + sha256 + " "), std::string(64, 'a'));
  EXPECT_EQ(Normalized(IndicatorType::kFileSha1, std::string(40, 'f')), std::string(40, 'f'));
  EXPECT_EQ(Normalized(IndicatorType::kFileMd5, std::string(32, '0')), std::string(32, '0'));
  EXPECT_EQ(Normalized(IndicatorType::kFileSha1, std::string(64, 'a')),
            "ERROR: indicatorValue: '" + std::string(64, 'a') +
                "' is not a SHA-1 hash (40 hexadecimal digits)");
  EXPECT_NE(Normalized(IndicatorType::kFileMd5, std::string(31, 'a') + "g").find("ERROR"),
            std::string::npos);
  EXPECT_EQ(Normalized(IndicatorType::kCertificateThumbprint, std::string(64, 'B')),
            std::string(64, 'b'));
  EXPECT_EQ(Normalized(IndicatorType::kFileSha256, ""), "ERROR: indicatorValue is required");
}

TEST(IndicatorValueTest, IpAddressesAndCidrRanges) {
  EXPECT_EQ(Normalized(IndicatorType::kIpAddress, "10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(Normalized(IndicatorType::kIpAddress, "10.0.0.0/8"), "10.0.0.0/8");
  EXPECT_EQ(Normalized(IndicatorType::kIpAddress, "10.1.2.3/32"), "10.1.2.3");
  EXPECT_EQ(Normalized(IndicatorType::kIpAddress, "2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
  EXPECT_EQ(Normalized(IndicatorType::kIpAddress, "2001:db8::/32"), "2001:db8::/32");
  EXPECT_EQ(Normalized(IndicatorType::kIpAddress, "10.1.2.3/8"),
            "ERROR: indicatorValue: '10.1.2.3/8' has host bits set; the network is 10.0.0.0/8");
  EXPECT_NE(Normalized(IndicatorType::kIpAddress, "10.0.0.0/33").find("prefix length"),
            std::string::npos);
  EXPECT_NE(Normalized(IndicatorType::kIpAddress, "256.1.1.1").find("not an IPv4"),
            std::string::npos);
  EXPECT_NE(Normalized(IndicatorType::kIpAddress, "example.com").find("ERROR"), std::string::npos);
}

TEST(IndicatorValueTest, DomainsAreLowercaseWithoutTrailingDot) {
  EXPECT_EQ(Normalized(IndicatorType::kDomainName, "Evil.Example.COM."), "evil.example.com");
  EXPECT_EQ(Normalized(IndicatorType::kDomainName, "xn--bcher-kva.example"), "xn--bcher-kva.example");
  EXPECT_NE(Normalized(IndicatorType::kDomainName, "*.example.com").find("wildcards"),
            std::string::npos);
  EXPECT_NE(Normalized(IndicatorType::kDomainName, "a..b").find("not a valid domain"),
            std::string::npos);
  EXPECT_NE(Normalized(IndicatorType::kDomainName, "-a.com").find("not a valid domain"),
            std::string::npos);
  EXPECT_NE(Normalized(IndicatorType::kDomainName, "1.2.3.4").find("use type IpAddress"),
            std::string::npos);
  EXPECT_NE(Normalized(IndicatorType::kDomainName, "bücher.de").find("xn--"), std::string::npos);
}

TEST(IndicatorValueTest, UrlsKeepThePathAndAreEnforcedAtTheHost) {
  EXPECT_EQ(Normalized(IndicatorType::kUrl, "HTTPS://Evil.Example.com:443/Path?q=1"),
            "https://evil.example.com/Path?q=1");
  EXPECT_EQ(Normalized(IndicatorType::kUrl, "evil.example.com/x"), "http://evil.example.com/x");
  EXPECT_EQ(Normalized(IndicatorType::kUrl, "http://[2001:db8::1]:8080/"), "http://[2001:db8::1]:8080");
  EXPECT_EQ(UrlHost("https://evil.example.com/Path?q=1"), "evil.example.com");
  EXPECT_EQ(UrlHost("http://[2001:db8::1]:8080"), "2001:db8::1");
  EXPECT_EQ(UrlHost("http://10.0.0.1:8080/a"), "10.0.0.1");
  EXPECT_NE(Normalized(IndicatorType::kUrl, "ftp://x.example").find("only http and https"),
            std::string::npos);
  EXPECT_NE(Normalized(IndicatorType::kUrl, "https://bad_host!/").find("valid host"),
            std::string::npos);
}

json Body() {
  return {{"indicatorValue", std::string(64, 'A')},
          {"indicatorType", "FileSha256"},
          {"action", "Block"},
          {"title", "bad tool"},
          {"description", "seen in incident 7"},
          {"severity", "High"},
          {"expirationTime", "2027-02-01T00:00:00Z"},
          {"recommendedActions", "reimage"},
          {"rbacGroupNames", {"servers", "lab"}},
          {"generateAlert", true}};
}

std::string Error(const json& body) {
  Result<Indicator> r = ParseIndicatorSubmission(body, kNow);
  return r.ok() ? "OK" : r.status().message();
}

TEST(IndicatorSubmissionTest, ParsesEveryField) {
  Result<Indicator> r = ParseIndicatorSubmission(Body(), kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->value, std::string(64, 'a'));
  EXPECT_EQ(r->type, IndicatorType::kFileSha256);
  EXPECT_EQ(r->action, IndicatorAction::kBlock);
  EXPECT_EQ(r->severity, AlertSeverity::kHigh);
  EXPECT_EQ(r->title, "bad tool");
  EXPECT_EQ(r->description, "seen in incident 7");
  EXPECT_EQ(r->recommended_actions, "reimage");
  EXPECT_EQ(r->expiration_time, ParseIso8601("2027-02-01T00:00:00Z"));
  EXPECT_EQ(r->rbac_group_names, (std::vector<std::string>{"servers", "lab"}));
  EXPECT_TRUE(r->generate_alert);
}

TEST(IndicatorSubmissionTest, AcceptsCsvSpellings) {
  json body = {{"IndicatorValue", "Evil.example."}, {"IndicatorType", "DomainName"},
               {"Action", "Warn"},                   {"Title", "t"},
               {"RbacGroups", "a, b;c"},             {"GenerateAlert", "FALSE"},
               {"ExpirationTime", ""}};
  Result<Indicator> r = ParseIndicatorSubmission(body, kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->value, "evil.example");
  EXPECT_EQ(r->rbac_group_names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(r->generate_alert);
  EXPECT_FALSE(r->expiration_time);
  EXPECT_EQ(r->severity, AlertSeverity::kInformational);
}

TEST(IndicatorSubmissionTest, RejectsWithMessagesNamingTheField) {
  auto without = [](const char* field) {
    json b = Body();
    b.erase(field);
    return b;
  };
  auto with = [](const char* field, json value) {
    json b = Body();
    b[field] = std::move(value);
    return b;
  };
  EXPECT_EQ(Error(without("title")), "title is required");
  EXPECT_EQ(Error(without("indicatorType")), "indicatorType is required");
  EXPECT_EQ(Error(without("action")), "action is required");
  EXPECT_EQ(Error(without("indicatorValue")), "indicatorValue is required");
  EXPECT_EQ(Error(without("description")), "OK");
  EXPECT_EQ(Error(with("action", "Audit")), "OK");  // Body() has generateAlert true
  json audit = with("action", "Audit");
  audit["generateAlert"] = false;
  EXPECT_EQ(Error(audit), "generateAlert must be true when action is Audit");
  EXPECT_EQ(Error(with("action", "Alert")).substr(0, 30), "action: 'Alert' was retired in");
  EXPECT_EQ(Error(with("action", "Nuke")),
            "action: 'Nuke' is not one of Allowed, Audit, Warn, Block, BlockAndRemediate");
  EXPECT_EQ(Error(with("severity", "Critical")),
            "severity: 'Critical' is not one of Informational, Low, Medium, High");
  EXPECT_EQ(Error(with("expirationTime", "2020-01-01T00:00:00Z")), "expirationTime is in the past");
  EXPECT_EQ(Error(with("expirationTime", "tomorrow")).substr(0, 26), "expirationTime: 'tomorrow'");
  EXPECT_EQ(Error(with("colour", "red")), "unknown field 'colour'");
  EXPECT_EQ(Error(with("title", std::string(300, 'x'))), "title is longer than 256 characters");
  EXPECT_EQ(Error(with("generateAlert", 3)), "generateAlert must be true or false");
  EXPECT_EQ(Error(with("rbacGroupNames", json::array({1}))), "rbacGroupNames must be a list of strings");
  EXPECT_EQ(Error(with("indicatorType", "Hash")).substr(0, 27), "indicatorType: 'Hash' is no");
  EXPECT_EQ(Error(json::array()), "an indicator must be a JSON object");
}

TEST(IndicatorSubmissionTest, ActionsPerTypeAsDefenderAllows) {
  json ip = {{"indicatorValue", "10.0.0.1"}, {"indicatorType", "IpAddress"},
             {"action", "BlockAndRemediate"}, {"title", "t"}};
  EXPECT_EQ(Error(ip), "action: BlockAndRemediate cannot be used with IpAddress indicators");
  ip["action"] = "Block";
  EXPECT_EQ(Error(ip), "OK");
  json cert = {{"indicatorValue", std::string(40, 'a')}, {"indicatorType", "CertificateThumbprint"},
               {"action", "Block"}, {"title", "t"}};
  EXPECT_EQ(Error(cert), "action: Block cannot be used with CertificateThumbprint indicators");
  cert["action"] = "BlockAndRemediate";
  EXPECT_EQ(Error(cert), "OK");
}

TEST(IndicatorApplyTest, GroupsExpiryAndWireForm) {
  Indicator i;
  i.id = "i1";
  i.type = IndicatorType::kUrl;
  i.value = "https://evil.example/x";
  i.action = IndicatorAction::kWarn;
  i.title = "t";
  i.rbac_group_names = {"lab"};
  i.expiration_time = kNow + 1000;
  EXPECT_TRUE(IndicatorApplies(i, "lab", kNow));
  EXPECT_FALSE(IndicatorApplies(i, "servers", kNow));
  EXPECT_FALSE(IndicatorApplies(i, "lab", kNow + 1000));  // expired at its expiration time
  i.rbac_group_names.clear();
  EXPECT_TRUE(IndicatorApplies(i, "", kNow));
  quell::v1::Indicator wire = ToWireIndicator(i);
  EXPECT_EQ(wire.value(), "evil.example");
  EXPECT_EQ(wire.action(), "Audit");
  EXPECT_EQ(wire.type(), "Url");
  EXPECT_EQ(wire.expiration_unix_ms(), kNow + 1000);
  json j = IndicatorToJson(i);
  EXPECT_EQ(j["action"], "Warn");
  EXPECT_EQ(j["indicatorValue"], "https://evil.example/x");
  EXPECT_EQ(j["expirationTime"], FormatIso8601(kNow + 1000));
}

}  // namespace
}  // namespace quell::server
