// The rules of the indicator model that do not depend on storage or transport: how a
// Defender-shaped submit body becomes a validated, normalized Indicator, the JSON the REST
// API returns, which indicators apply to a device, and the form agents receive. Pure
// functions, unit-tested (indicator_model_test.cc).
//
// Quell departs from Defender where it is cheap and useful, and says so:
// - IpAddress accepts a CIDR range ("10.0.0.0/8", "2001:db8::/32"); Defender takes single
//   addresses only. Host bits must be zero; /32 and /128 are stored as a plain address.
// - Warn is accepted and sent to agents as Audit. Defender's Warn shows the user a page they
//   may click through (SmartScreen/Edge); a Linux host has no such interactive surface, so
//   the honest equivalent is to let the activity happen and record it (Audit).
// - Url is enforced at the host: agents see DNS names and addresses, not HTTPS paths, so the
//   agent receives the URL's host (the stored value keeps the whole URL).
// - description is optional (Defender requires it).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "quell/v1/agent.pb.h"
#include "server/store/store.h"

namespace quell::server {

inline constexpr size_t kMaxIndicatorTitleLength = 256;
inline constexpr size_t kMaxIndicatorTextLength = 4000;  // description, recommendedActions
inline constexpr size_t kMaxIndicatorValueLength = 2048;

// The normalized form of `value` for `type`: hashes lowercase hex of the right length;
// IPs in canonical text (inet_ntop), with "/prefix" for ranges; domains lowercase without
// a trailing dot; URLs with lowercase scheme and host, without a default port.
// InvalidArgument("indicatorValue: ...") says what is wrong.
Result<std::string> NormalizeIndicatorValue(IndicatorType type, std::string_view value);

// The host of a normalized Url value: a domain, an IPv4 address or an IPv6 address
// (without brackets). REQUIRES: `url` came from NormalizeIndicatorValue(kUrl, ...).
std::string UrlHost(std::string_view url);

// Whether `action` may be used with `type` (Defender's portal: files take all actions; IPs,
// domains and URLs take Allowed/Audit/Warn/Block; certificates Allowed/BlockAndRemediate).
bool ActionAllowedFor(IndicatorType type, IndicatorAction action);

// A POST /api/indicators body (or one item of an import) as an Indicator: every rule of the
// submit API checked, value normalized. Field names are Defender's camelCase; the PascalCase
// spelling of CSV headers is accepted too. Sets neither id, times, creator nor version.
// InvalidArgument names the field ("title is required", "action: ...").
// `now` is for rejecting an expirationTime in the past.
Result<Indicator> ParseIndicatorSubmission(const nlohmann::json& body, UnixMillis now);

// The indicator as the REST API returns it (Defender's entity names, plus Quell's version).
nlohmann::json IndicatorToJson(const Indicator& indicator);

// True if the indicator is in force on a device of `device_group` at `now`: not expired and
// either for every group or naming this one.
bool IndicatorApplies(const Indicator& indicator, std::string_view device_group, UnixMillis now);

// Warn -> Audit (see the top of this file); every other action unchanged.
IndicatorAction AgentAction(IndicatorAction action);

// The indicator as an agent receives it.
quell::v1::Indicator ToWireIndicator(const Indicator& indicator);

}  // namespace quell::server
