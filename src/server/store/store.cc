#include "server/store/store.h"

#include <array>

namespace quell::server {
namespace {

// Each table is indexed by the enum's value, so its order must follow the enum's.
constexpr std::array<std::string_view, 6> kActionStatusNames = {
    "Pending", "InProgress", "Succeeded", "Failed", "TimeOut", "Cancelled"};
constexpr std::array<std::string_view, 3> kRoleNames = {"viewer", "responder", "admin"};
constexpr std::array<std::string_view, 3> kIsolationStateNames = {"NotIsolated", "Full",
                                                                  "Selective"};

template <typename E, size_t N>
std::optional<E> ParseName(const std::array<std::string_view, N>& names, std::string_view s) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<E>(i);
  }
  return std::nullopt;
}

}  // namespace

std::string_view ActionStatusName(ActionStatus s) {
  return kActionStatusNames.at(static_cast<size_t>(s));
}
std::optional<ActionStatus> ParseActionStatus(std::string_view s) {
  return ParseName<ActionStatus>(kActionStatusNames, s);
}

std::string_view RoleName(Role r) { return kRoleNames.at(static_cast<size_t>(r)); }
std::optional<Role> ParseRole(std::string_view s) { return ParseName<Role>(kRoleNames, s); }

std::string_view IsolationStateName(IsolationState s) {
  return kIsolationStateNames.at(static_cast<size_t>(s));
}
std::optional<IsolationState> ParseIsolationState(std::string_view s) {
  return ParseName<IsolationState>(kIsolationStateNames, s);
}

bool IsFinal(ActionStatus s) {
  return s != ActionStatus::kPending && s != ActionStatus::kInProgress;
}

std::string_view AlertSeverityName(AlertSeverity s) {
  switch (s) {
    case AlertSeverity::kUnSpecified: return "UnSpecified";
    case AlertSeverity::kInformational: return "Informational";
    case AlertSeverity::kLow: return "Low";
    case AlertSeverity::kMedium: return "Medium";
    case AlertSeverity::kHigh: return "High";
  }
  return "UnSpecified";
}

std::optional<AlertSeverity> ParseAlertSeverity(std::string_view s) {
  for (AlertSeverity v : {AlertSeverity::kUnSpecified, AlertSeverity::kInformational,
                          AlertSeverity::kLow, AlertSeverity::kMedium, AlertSeverity::kHigh}) {
    if (AlertSeverityName(v) == s) return v;
  }
  return std::nullopt;
}

std::string_view AlertStatusName(AlertStatus s) {
  switch (s) {
    case AlertStatus::kNew: return "New";
    case AlertStatus::kInProgress: return "InProgress";
    case AlertStatus::kResolved: return "Resolved";
  }
  return "New";
}

std::optional<AlertStatus> ParseAlertStatus(std::string_view s) {
  for (AlertStatus v : {AlertStatus::kNew, AlertStatus::kInProgress, AlertStatus::kResolved}) {
    if (AlertStatusName(v) == s) return v;
  }
  return std::nullopt;
}

std::string_view IndicatorTypeName(IndicatorType t) {
  switch (t) {
    case IndicatorType::kFileSha1: return "FileSha1";
    case IndicatorType::kFileSha256: return "FileSha256";
    case IndicatorType::kFileMd5: return "FileMd5";
    case IndicatorType::kCertificateThumbprint: return "CertificateThumbprint";
    case IndicatorType::kIpAddress: return "IpAddress";
    case IndicatorType::kDomainName: return "DomainName";
    case IndicatorType::kUrl: return "Url";
  }
  return "?";
}

std::optional<IndicatorType> ParseIndicatorType(std::string_view s) {
  for (IndicatorType v :
       {IndicatorType::kFileSha1, IndicatorType::kFileSha256, IndicatorType::kFileMd5,
        IndicatorType::kCertificateThumbprint, IndicatorType::kIpAddress,
        IndicatorType::kDomainName, IndicatorType::kUrl}) {
    if (IndicatorTypeName(v) == s) return v;
  }
  return std::nullopt;
}

std::string_view IndicatorActionName(IndicatorAction a) {
  switch (a) {
    case IndicatorAction::kAllowed: return "Allowed";
    case IndicatorAction::kAudit: return "Audit";
    case IndicatorAction::kWarn: return "Warn";
    case IndicatorAction::kBlock: return "Block";
    case IndicatorAction::kBlockAndRemediate: return "BlockAndRemediate";
  }
  return "?";
}

std::optional<IndicatorAction> ParseIndicatorAction(std::string_view s) {
  for (IndicatorAction v : {IndicatorAction::kAllowed, IndicatorAction::kAudit,
                            IndicatorAction::kWarn, IndicatorAction::kBlock,
                            IndicatorAction::kBlockAndRemediate}) {
    if (IndicatorActionName(v) == s) return v;
  }
  return std::nullopt;
}

}  // namespace quell::server
