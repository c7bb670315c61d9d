#include "agent/collect/collectors.h"

namespace quell::agent::collect {

const std::vector<Collector>& InvestigationCollectors() {
  static const std::vector<Collector> collectors = {
      {"System Information", CollectSystemInformation},
      {"Processes", CollectProcesses},
      {"Network connections", CollectNetwork},
      {"Autoruns", CollectAutoruns},
      {"Scheduled tasks", CollectScheduledTasks},
      {"Services", CollectServices},
      {"Users and Groups", CollectUsersAndGroups},
      {"Logins", CollectLogins},
      {"Security logs", CollectSecurityLogs},
      {"Installed programs", CollectInstalledPrograms},
      {"Temp Directories", CollectTempDirectories},
  };
  return collectors;
}

}  // namespace quell::agent::collect
