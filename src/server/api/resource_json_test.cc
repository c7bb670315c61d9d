#include "server/api/resource_json.h"

#include <gtest/gtest.h>

namespace quell::server {
namespace {

TEST(ResourceJsonTest, MachineActionHasDefenderFieldsAndEnums) {
  MachineAction a{.id = "5382f7ea",
                  .type = "Isolate",
                  .scope = "Selective",
                  .requestor = "Analyst",
                  .requestor_comment = "test for docs",
                  .status = ActionStatus::kSucceeded,
                  .machine_id = "7b1f",
                  .computer_dns_name = "desktop-test",
                  .creation_time = 1546439978226,
                  .last_update_time = 1546440044659};
  nlohmann::json j = MachineActionToJson(a);
  EXPECT_EQ(j["id"], "5382f7ea");
  EXPECT_EQ(j["type"], "Isolate");
  EXPECT_EQ(j["scope"], "Selective");
  EXPECT_EQ(j["requestor"], "Analyst");
  EXPECT_EQ(j["requestorComment"], "test for docs");
  EXPECT_EQ(j["status"], "Succeeded");
  EXPECT_EQ(j["machineId"], "7b1f");
  EXPECT_EQ(j["computerDnsName"], "desktop-test");
  EXPECT_EQ(j["creationDateTimeUtc"], "2019-01-02T14:39:38.226Z");
  EXPECT_EQ(j["lastUpdateDateTimeUtc"], "2019-01-02T14:40:44.659Z");
  EXPECT_TRUE(j["relatedFileInfo"].is_null());
  EXPECT_TRUE(j["cancellationRequestor"].is_null());
  EXPECT_TRUE(j["cancellationDateTimeUtc"].is_null());
}

TEST(ResourceJsonTest, EveryStatusUsesTheDefenderSpelling) {
  MachineAction a;
  for (auto [status, name] : std::vector<std::pair<ActionStatus, std::string>>{
           {ActionStatus::kPending, "Pending"},
           {ActionStatus::kInProgress, "InProgress"},
           {ActionStatus::kSucceeded, "Succeeded"},
           {ActionStatus::kFailed, "Failed"},
           {ActionStatus::kTimeOut, "TimeOut"},
           {ActionStatus::kCancelled, "Cancelled"}}) {
    a.status = status;
    EXPECT_EQ(MachineActionToJson(a)["status"], name);
  }
}

TEST(ResourceJsonTest, MachineHealthFollowsLastSeen) {
  Device d{.id = "m1",
           .computer_dns_name = "h1",
           .ip_addresses = {"10.77.0.11", "fd77::11"},
           .last_ip_address = "10.77.0.11",
           .first_seen = 1000,
           .last_seen = 10'000,
           .isolation = IsolationState::kFull};
  nlohmann::json active = MachineToJson(d, 10'000 + 90'000, 90'000);
  EXPECT_EQ(active["healthStatus"], "Active");
  EXPECT_EQ(active["osPlatform"], "Linux");
  EXPECT_EQ(active["lastIpAddress"], "10.77.0.11");
  EXPECT_EQ(active["isolationState"], "Full");
  EXPECT_EQ(active["ipAddresses"][1]["ipAddress"], "fd77::11");
  EXPECT_EQ(active["lastSeen"], "1970-01-01T00:00:10.000Z");
  EXPECT_EQ(MachineToJson(d, 10'000 + 90'001, 90'000)["healthStatus"], "Inactive");
  d.offboarded = true;
  EXPECT_EQ(MachineToJson(d, 10'000, 90'000)["healthStatus"], "Inactive");
  EXPECT_EQ(MachineToJson(d, 10'000, 90'000)["onboardingStatus"], "Offboarded");
}

}  // namespace
}  // namespace quell::server
