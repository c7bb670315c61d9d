// "Processes": every process with its owner, command line, executable, executable hash and
// deleted-image flag (processes.json), and the same as an indented tree (process_tree.txt).
#include <string>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"
#include "agent/collect/process_table.h"

namespace quell::agent::collect {
namespace {

constexpr std::string_view kTopic = "Processes";

}  // namespace

void CollectProcesses(const CollectSources& sources, PackageStaging& out) {
  if (out.Exhausted()) return;
  ProcessListOptions options;
  options.passwd_path = files::Under(sources, "/etc/passwd");
  options.stop_hashing = [&out] { return out.Exhausted(); };
  auto processes = ListProcesses(sources.proc_root, options);
  if (!processes.ok()) {
    out.RecordFailure(kTopic, sources.proc_root, processes.status().message());
    return;
  }
  out.AddJson(kTopic, "processes.json", ProcessesToJson(*processes), sources.proc_root);
  out.AddText(kTopic, "process_tree.txt", ProcessTreeText(*processes), sources.proc_root);
}

}  // namespace quell::agent::collect
