#include "agent/actions/isolate.h"

namespace quell::agent {
namespace {

Result<IsolationType> RequestedType(const nlohmann::json& parameters) {
  if (!parameters.is_object()) return InvalidArgument("Isolate parameters must be an object");
  for (const auto& [key, value] : parameters.items()) {
    if (key == "Comment" && value.is_string()) continue;
    if (key == "IsolationType" && value.is_string()) continue;
    return InvalidArgument("Isolate: unexpected parameter '" + key + "'");
  }
  auto it = parameters.find("IsolationType");
  if (it == parameters.end()) return IsolationType::kFull;
  const std::string name = it->get<std::string>();
  if (name != "Full" && name != "Selective") {
    return InvalidArgument("Isolate: IsolationType must be Full or Selective, not '" + name + "'");
  }
  return ParseIsolationType(name);
}

}  // namespace

const ActionSpec& IsolateAction::Spec() const {
  static const ActionSpec spec{
      .type = "Isolate",
      .undo_type = "Unisolate",
      .description =
          "Cuts the device off the network, keeping only its link to the Quell server "
          "(Selective: plus the configured allow-list). Survives agent restarts and reboots.",
      .risk = "high",
      .parameters_schema =
          {{"type", "object"},
           {"properties",
            {{"IsolationType",
              {{"type", "string"}, {"enum", {"Full", "Selective"}}, {"default", "Full"}}},
             {"Comment", {{"type", "string"}}}}},
           {"additionalProperties", false}},
  };
  return spec;
}

Status IsolateAction::Validate(const nlohmann::json& parameters) const {
  return RequestedType(parameters).status();
}

Result<nlohmann::json> IsolateAction::Run(ActionContext& ctx) {
  QUELL_ASSIGN_OR_RETURN(IsolationType type, RequestedType(ctx.parameters));
  ctx.report_progress(10, "applying " + std::string(IsolationTypeName(type)) + " isolation");
  return controller_.Isolate(type);
}

Result<nlohmann::json> IsolateAction::Undo(ActionContext& ctx) {
  ctx.report_progress(10, "releasing from isolation");
  return controller_.Release();
}

}  // namespace quell::agent
