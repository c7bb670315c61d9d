// Agent configuration files through ParseAgentConfig: whatever the YAML, the parser
// reports problems instead of crashing or throwing, and every problem names the file.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/app/agent_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  quell::agent::AgentConfigLoad load = quell::agent::ParseAgentConfig(yaml, "agent.yaml");
  for (const auto& problem : load.problems) {
    if (problem.file != "agent.yaml" || problem.message.empty() || problem.line < 0) std::abort();
  }
  (void)load.ProblemsText();
  return 0;
}
