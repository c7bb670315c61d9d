// The rules of the alert model that do not depend on where alerts come from: the Defender
// enums a person may set (classification, determination), the JSON shape of an alert, and
// how evidence from a repeated detection is merged. Pure functions, unit-tested.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "server/store/store.h"

namespace quell::server {

// "TruePositive", "InformationalExpectedActivity", "FalsePositive" (the PATCH spelling of the
// MDE reference); nullopt for anything else.
std::optional<std::string> ParseAlertClassification(std::string_view s);

// The MDE determination values. The update page's aliases are accepted and mapped to the
// alert-entity spelling: "ConfirmedActivity" -> "ConfirmedUserActivity", "NotMalicious" ->
// "Clean". nullopt for anything else (including the deprecated "Apt", "SecurityPersonnel").
std::optional<std::string> ParseAlertDetermination(std::string_view s);

// True if `determination` belongs to `classification` in the reference's grouping ("Other"
// belongs to each); true when either is empty.
bool DeterminationFits(std::string_view classification, std::string_view determination);

// The alert as the REST API returns it: MDE/Graph v2 names (id, title, ..., evidence) plus
// Quell's eventCount. Empty optional strings are JSON null.
nlohmann::json AlertToJson(const Alert& alert);

// Evidence of a repeated detection merged into an alert's: items of `incoming` that are not
// already present (compared without createdDateTime) are appended, up to `max_items`.
// Both are JSON arrays; a non-array is treated as empty.
nlohmann::json MergeEvidence(const nlohmann::json& existing, const nlohmann::json& incoming,
                             size_t max_items = 200);

}  // namespace quell::server
