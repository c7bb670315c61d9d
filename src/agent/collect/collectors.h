// The topics of an investigation package and the collector that fills each one. Every
// collector reads the host through CollectSources (so unit tests point it at a fixture tree),
// adds artifacts to the PackageStaging under its topic, records what it could not collect,
// and returns early once the package is Exhausted().
//
// Never collected: password hashes (/etc/shadow, /etc/gshadow), private keys (any file whose
// content holds "PRIVATE KEY"), or the contents of users' files beyond the listed locations.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "agent/collect/package_staging.h"

namespace quell::agent::collect {

struct CollectSources {
  std::string root = "/";        // host paths are read under this root
  std::string proc_root = "/proc";
  bool run_commands = true;      // false in unit tests: only files are read
};

using CollectorFn = std::function<void(const CollectSources&, PackageStaging&)>;

struct Collector {
  std::string topic;  // the folder in the package, e.g. "Autoruns"
  CollectorFn collect;
};

// One per topic file (collect_<topic>.cc).
void CollectAutoruns(const CollectSources& sources, PackageStaging& out);           // "Autoruns"
void CollectInstalledPrograms(const CollectSources& sources, PackageStaging& out);  // "Installed programs"
void CollectNetwork(const CollectSources& sources, PackageStaging& out);            // "Network connections"
void CollectProcesses(const CollectSources& sources, PackageStaging& out);          // "Processes"
void CollectScheduledTasks(const CollectSources& sources, PackageStaging& out);     // "Scheduled tasks"
void CollectSecurityLogs(const CollectSources& sources, PackageStaging& out);       // "Security logs"
void CollectServices(const CollectSources& sources, PackageStaging& out);           // "Services"
void CollectUsersAndGroups(const CollectSources& sources, PackageStaging& out);     // "Users and Groups"
void CollectLogins(const CollectSources& sources, PackageStaging& out);             // "Logins"
void CollectSystemInformation(const CollectSources& sources, PackageStaging& out);  // "System Information"
void CollectTempDirectories(const CollectSources& sources, PackageStaging& out);    // "Temp Directories"

// Every collector, in package order.
const std::vector<Collector>& InvestigationCollectors();

}  // namespace quell::agent::collect
