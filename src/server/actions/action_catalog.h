// The machine action types the server accepts, described as data. The REST routes
// (POST /api/machines/{id}/<route>), body validation, role checks, conflict detection and
// the GET /api/actiontypes listing are all driven by this table, so adding an action type on
// the server is one entry here.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/store/store.h"

namespace quell::server {

// What a valid request body turns into.
struct ParsedActionBody {
  std::string comment;
  std::string scope;                                    // MachineAction.scope, may be empty
  std::string external_id;
  nlohmann::json agent_parameters = nlohmann::json::object();  // sent to the agent
  // The role this body needs beyond the type's min_role (LiveResponse: PutFile and RunScript
  // need admin, GetFile responder).
  Role min_role = Role::kViewer;
  // Library files the body names; the route resolves them into agent_parameters["Library"]
  // ({name: {"sha256", "size"}}) so the device fetches exactly what was asked for.
  std::vector<std::string> library_files;
  // A SHA-256 whose newest path on the device the route puts into agent_parameters["Path"]
  // (CollectFile named by hash only), from the file sightings.
  std::string path_from_sightings_of;
};

struct ActionTypeSpec {
  std::string type;            // MachineAction.type, e.g. "Isolate"
  std::string route;           // path segment after /api/machines/{id}/
  std::string title;           // human title, e.g. "Isolate device"
  std::string description;
  std::string conflict_group;  // two open actions of one group on a device conflict
  // The error code of that conflict's 400 (Defender's, e.g. ActiveRequestAlreadyExists).
  std::string conflict_error_code = "FailedPrecondition";
  std::string undo_type;       // the type that reverses this one; empty if none
  // The agent parameter of the undo action that names the action it reverses (e.g.
  // "QuarantineActionId"); empty when the undo needs no parameter (Unisolate).
  std::string undo_reference_parameter;
  std::string risk;            // "low" | "medium" | "high"
  Role min_role = Role::kResponder;
  nlohmann::json body_schema;  // documented request body
  // REQUIRES: body is a JSON object. InvalidArgument names the offending field.
  std::function<Result<ParsedActionBody>(const nlohmann::json& body)> parse_body;
};

// All types this server knows, in listing order.
const std::vector<ActionTypeSpec>& ActionCatalog();

// nullptr if unknown. Lookup is case-sensitive on type, case-insensitive on route.
const ActionTypeSpec* FindActionType(std::string_view type);
const ActionTypeSpec* FindActionRoute(std::string_view route);

// The JSON description of one type for GET /api/actiontypes.
nlohmann::json DescribeActionType(const ActionTypeSpec& spec);

}  // namespace quell::server
