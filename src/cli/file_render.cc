#include "cli/file_render.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <vector>

#include "cli/downloads.h"
#include "cli/live_render.h"
#include "cli/table.h"

namespace quell::cli {
namespace {

using nlohmann::json;

// A string field escaped for one line, or `fallback` (not escaped) when it is missing or empty.
std::string Str(const json& object, const char* key, const std::string& fallback = "-") {
  const std::string value = JsonString(object, key);
  return value.empty() ? fallback : OneLine(value);
}

const json& Member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

const json& Array(const json& object, const char* key) {
  static const json kEmpty = json::array();
  const json& value = Member(object, key);
  return value.is_array() ? value : kEmpty;
}

std::string Size(const json& object, const char* key) {
  const int64_t size = JsonInt(object, key);
  if (size < 0) return "-";
  return size < 1024 ? HumanSize(static_cast<uint64_t>(size))
                     : HumanSize(static_cast<uint64_t>(size)) + " (" + std::to_string(size) +
                           " bytes)";
}

// A JSON value of a report as one escaped line: strings as such, numbers and booleans as JSON.
std::string Scalar(const json& value) {
  if (value.is_string()) return OneLine(value.get<std::string>());
  if (value.is_null()) return "-";
  return OneLine(value.dump());
}

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string Shorten(std::string text, size_t max) {
  if (text.size() <= max) return text;
  text.resize(max);
  // Do not leave half a UTF-8 sequence behind.
  while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xc0) == 0x80) text.pop_back();
  if (!text.empty() && (static_cast<unsigned char>(text.back()) & 0x80) != 0) text.pop_back();
  return text + "...";
}

std::string VerdictText(const std::string& verdict) {
  if (verdict == "malicious") return "MALICIOUS";
  if (verdict == "suspicious") return "SUSPICIOUS";
  if (verdict == "noThreatsFound") return "no threats found";
  return verdict.empty() ? "-" : OneLine(verdict);
}

std::string Indent(const std::string& table, const std::string& prefix) {
  std::string out;
  for (size_t start = 0; start < table.size();) {
    size_t end = table.find('\n', start);
    if (end == std::string::npos) end = table.size() - 1;
    out += prefix + table.substr(start, end - start + 1);
    start = end + 1;
  }
  return out;
}

void RenderBehaviors(const json& report, std::string& out) {
  const json& behaviors = Array(report, "behaviors");
  out += "\nbehaviours (" + std::to_string(behaviors.size()) + ")";
  if (behaviors.empty()) {
    out += ": none\n";
    return;
  }
  out += ":\n";
  static const std::vector<std::string> kOrder = {"high", "medium", "low", "informational"};
  std::map<std::string, std::vector<const json*>> by_severity;
  for (const json& b : behaviors) by_severity[JsonString(b, "severity", "unknown")].push_back(&b);
  std::vector<std::string> severities = kOrder;
  for (const auto& [severity, _] : by_severity) {
    bool known = false;
    for (const std::string& k : kOrder) known = known || k == severity;
    if (!known) severities.push_back(severity);
  }
  for (const std::string& severity : severities) {
    auto it = by_severity.find(severity);
    if (it == by_severity.end()) continue;
    out += "  " + OneLine(severity) + " (" + std::to_string(it->second.size()) + "):\n";
    for (const json* b : it->second) {
      out += "    [" + Str(*b, "category") + "] " + Str(*b, "description");
      const int64_t pid = JsonInt(*b, "pid", 0);
      const int64_t at = JsonInt(*b, "atMs", -1);
      if (pid > 0) {
        out += "  (pid " + std::to_string(pid) + (at >= 0 ? ", at " + std::to_string(at) + " ms" : "") + ")";
      }
      out += "\n";
    }
  }
}

void RenderObservables(const json& report, std::string& out) {
  const json& observables = Member(report, "observables");
  const json& domains = Array(observables, "domains");
  const json& ips = Array(observables, "ips");
  const json& connections = Array(observables, "connections");
  const json& dropped = Array(observables, "droppedFiles");
  out += "\nobservables:\n";
  auto list = [&](const char* label, const json& values) {
    out += std::string("  ") + label + ": ";
    if (values.empty()) out += "none";
    for (size_t i = 0; i < values.size(); ++i) out += (i == 0 ? "" : ", ") + Scalar(values[i]);
    out += "\n";
  };
  list("domains", domains);
  list("IPs", ips);
  out += std::string("  connections:") + (connections.empty() ? " none\n" : "\n");
  for (const json& c : connections) {
    out += "    " + Str(c, "protocol", "?") + " " + Str(c, "address", "?") + ":" +
           Scalar(Member(c, "port"));
    const std::string domain = JsonString(c, "domain");
    if (!domain.empty()) out += " (" + OneLine(domain) + ")";
    const std::string first = JsonString(c, "firstBytes");
    if (!first.empty()) {
      // Already escaped by the sandbox (\n, \xNN); escaped again here in case it was not.
      out += "\n      first bytes: \"" + Shorten(OneLine(first), 200) + "\"";
    }
    out += "\n";
  }
  out += std::string("  dropped files:") + (dropped.empty() ? " none\n" : "\n");
  if (!dropped.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const json& f : dropped) {
      const json& exec = Member(f, "executable");
      rows.push_back({Str(f, "path"), Size(f, "size"), exec.is_boolean() && exec.get<bool>() ? "yes" : "no",
                      Str(f, "sha256")});
    }
    out += Indent(RenderTable({"PATH", "SIZE", "EXECUTABLE", "SHA-256"}, rows), "    ");
  }
}

void RenderProcesses(const json& report, std::string& out) {
  const json& processes = Array(report, "processes");
  out += "\nprocesses (" + std::to_string(processes.size()) + ")" + (processes.empty() ? ": none\n" : ":\n");
  if (processes.empty()) return;
  std::vector<std::vector<std::string>> rows;
  for (const json& p : processes) {
    std::string command;
    for (const json& arg : Array(p, "argv")) {
      command += (command.empty() ? "" : " ") + Scalar(arg);
    }
    if (command.empty()) command = Str(p, "executable");
    std::string end = "running";
    if (const json& killed = Member(p, "killedBy"); killed.is_number_integer()) {
      end = "signal " + std::to_string(killed.get<int64_t>());
    } else if (const json& code = Member(p, "exitCode"); code.is_number_integer()) {
      end = "exit " + std::to_string(code.get<int64_t>());
    }
    rows.push_back({Scalar(Member(p, "pid")), Scalar(Member(p, "parentPid")), end,
                    Shorten(command, 160)});
  }
  out += Indent(RenderTable({"PID", "PARENT", "ENDED", "COMMAND"}, rows), "  ");
}

}  // namespace

int VerdictExitCode(const std::string& verdict) {
  if (verdict == "noThreatsFound") return 0;
  if (verdict == "suspicious") return kExitSuspicious;
  if (verdict == "malicious") return kExitMalicious;
  return 1;
}

std::optional<std::string> NormalizeSha256(const std::string& text) {
  if (text.size() != 64) return std::nullopt;
  std::string out;
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

Status CheckZipPassword(const std::string& password) {
  if (password.size() < 8 || password.size() > 128) {
    return InvalidArgument("the password must be 8 to 128 characters (it has " +
                           std::to_string(password.size()) + ")");
  }
  for (unsigned char c : password) {
    if (c < 0x20 || c == 0x7f) return InvalidArgument("the password may not hold control characters");
  }
  return Status::Ok();
}

Result<std::string> PasswordFromFile(const std::string& contents) {
  std::string line = contents;
  if (line.ends_with("\n")) line.pop_back();
  if (line.ends_with("\r")) line.pop_back();
  if (line.find('\n') != std::string::npos) {
    return InvalidArgument("the password file must hold one line, the password");
  }
  return line;
}

Result<nlohmann::json> CollectFileBody(const std::string& path, const std::string& sha256,
                                       const std::string& comment) {
  if (path.empty() == sha256.empty()) {
    return InvalidArgument("give the file's path or --sha256 (one of them)");
  }
  if (comment.empty()) return InvalidArgument("--comment may not be empty");
  if (!path.empty()) {
    if (path.front() != '/') return InvalidArgument("the path must be absolute: '" + OneLine(path) + "'");
    return json{{"Comment", comment}, {"Path", path}};
  }
  std::optional<std::string> hash = NormalizeSha256(sha256);
  if (!hash) return InvalidArgument("--sha256 must be 64 hex digits");
  return json{{"Comment", comment}, {"Sha256", *hash}};
}

std::string SuggestedZipName(const std::string& file_name, const std::string& sha256) {
  bool plain = !file_name.empty() && file_name.size() <= 200 && file_name != "." &&
               file_name != ".." && file_name.front() != '-';
  for (unsigned char c : file_name) {
    plain = plain && (std::isalnum(c) != 0 || c == '.' || c == '_' || c == '-' || c == '+');
  }
  return (plain ? file_name : sha256) + ".zip";
}

std::string OneLine(const std::string& text) {
  std::string out;
  for (char c : EscapeControls(text)) {
    if (c == '\n') {
      out += "\\x0a";
    } else if (c == '\t') {
      out += "\\x09";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderCollectedFile(const json& result) {
  const std::string sha256 = NormalizeSha256(JsonString(result, "Sha256")).value_or("");
  std::string out = "collected " + Str(result, "Path") + "\n";
  out += "  sha256: " + (sha256.empty() ? "-" : sha256) + "\n";
  out += "  size:   " + Size(result, "Size") + "\n";
  out += "  name:   " + Str(result, "FileName") + "\n";
  if (sha256.empty()) return out;
  out += "next:\n";
  out += "  quell file download " + sha256 + " -o " +
         SuggestedZipName(JsonString(result, "FileName"), sha256) +
         " --password-file <file>   (or --password, or be asked)\n";
  out += "  quell file analyze " + sha256 + "\n";
  return out;
}

std::string RenderFileInfo(const json& file) {
  const std::string sha256 = Str(file, "sha256");
  std::string out;
  out += "sha256: " + sha256 + "\n";
  out += "sha1:   " + Str(file, "sha1") + "\n";
  out += "md5:    " + Str(file, "md5") + "\n";
  out += "name:   " + Str(file, "fileName") + "\n";
  out += "size:   " + Size(file, "size") + "\n";
  const json& collected = Member(file, "collected");
  if (collected.is_boolean() && collected.get<bool>()) {
    out += "on the server: yes (first collected " + Str(file, "firstCollected") +
           ", last " + Str(file, "lastCollected") + ")\n";
  } else {
    out += "on the server: no (quell file collect <machine> --sha256 " + sha256 + ")\n";
  }
  const json& collections = Array(file, "collections");
  if (!collections.empty()) {
    out += "collections (" + std::to_string(collections.size()) + "):\n";
    std::vector<std::vector<std::string>> rows;
    for (const json& c : collections) {
      rows.push_back({Str(c, "computerDnsName"), Str(c, "path"), Str(c, "collectedAt"),
                      Str(c, "requestor"), Str(c, "actionId")});
    }
    out += Indent(RenderTable({"MACHINE", "PATH", "COLLECTED", "BY", "ACTION"}, rows), "  ");
  }
  const json& seen = Array(file, "seenOn");
  const int64_t devices = JsonInt(file, "seenOnDevices", static_cast<int64_t>(seen.size()));
  out += "seen on " + Plural(static_cast<size_t>(std::max<int64_t>(devices, 0)), "device", "devices") +
         (seen.empty() ? "\n" : ":\n");
  if (!seen.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const json& s : seen) {
      rows.push_back({Str(s, "computerDnsName"), Str(s, "filePath"), Str(s, "lastSeen"),
                      Str(s, "machineId")});
    }
    out += Indent(RenderTable({"MACHINE", "PATH", "LAST SEEN", "MACHINE ID"}, rows), "  ");
    if (devices > static_cast<int64_t>(seen.size())) {
      out += "  ... and " + std::to_string(devices - static_cast<int64_t>(seen.size())) +
             " more (quell file sightings " + sha256 + ")\n";
    }
  }
  const json& analysis = Member(file, "deepAnalysis");
  if (analysis.is_object()) {
    out += "deep analysis: " + Str(analysis, "status");
    const std::string verdict = JsonString(analysis, "verdict");
    if (!verdict.empty()) out += ", verdict " + VerdictText(verdict);
    out += " (requested " + Str(analysis, "requested") + ", id " + Str(analysis, "id") + ")\n";
  } else {
    out += "deep analysis: none (quell file analyze " + sha256 + ")\n";
  }
  return out;
}

std::string RenderAnalysisProgress(const json& analysis) {
  std::string out = Str(analysis, "status", "?");
  const std::string stage = JsonString(analysis, "stage");
  if (!stage.empty()) out += ": " + OneLine(stage);
  return out;
}

json AnalysisReport(const json& analysis) {
  const json& report = Member(analysis, "report");
  if (report.is_object()) return report;
  if (report.is_string()) {
    json parsed = json::parse(report.get<std::string>(), nullptr, false);
    if (parsed.is_object()) return parsed;
  }
  return nullptr;
}

std::string RenderAnalysisSummary(const json& analysis) {
  const json report = AnalysisReport(analysis);
  std::string verdict = JsonString(report, "verdict");
  if (verdict.empty()) verdict = JsonString(analysis, "verdict");
  std::string out = "verdict: " + VerdictText(verdict) + "\n";
  for (const json& reason : Array(report, "verdictReasons")) out += "  - " + Scalar(reason) + "\n";

  const json& sample = Member(report, "sample");
  out += "\nsample: " + Str(sample, "fileName", Str(analysis, "sha256"));
  const std::string kind = JsonString(sample, "kind");
  out += " (" + (kind.empty() ? std::string() : OneLine(kind) + ", ") + Size(sample, "size") + ")\n";
  out += "  sha256: " + Str(sample, "sha256", Str(analysis, "sha256")) + "\n";
  out += "  sha1:   " + Str(sample, "sha1") + "\n";
  out += "  md5:    " + Str(sample, "md5") + "\n";
  out += "analysis " + Str(analysis, "id") + " requested by " + Str(analysis, "requestor") +
         " at " + Str(analysis, "requested");
  const int64_t duration = JsonInt(report, "durationMs");
  if (duration >= 0) out += ", ran " + std::to_string(duration) + " ms";
  out += "\n";
  if (report.is_null()) {
    out += "(the server returned no report)\n";
    return out;
  }

  RenderBehaviors(report, out);
  RenderObservables(report, out);
  RenderProcesses(report, out);

  const json& limits = Member(report, "limits");
  std::vector<std::string> hit;
  auto flag = [&](const char* key, const char* text) {
    const json& value = Member(limits, key);
    if (value.is_boolean() && value.get<bool>()) hit.push_back(text);
  };
  flag("timedOut", "timed out (the sample was stopped)");
  flag("memoryLimitHit", "memory limit hit");
  flag("pidsLimitHit", "process limit hit (fork bomb?)");
  out += "\nlimits: ";
  if (hit.empty()) out += "none hit";
  for (size_t i = 0; i < hit.size(); ++i) out += (i == 0 ? "" : "; ") + hit[i];
  out += "\n";
  const json& truncated = Member(report, "truncated");
  if (truncated.is_boolean() && truncated.get<bool>()) {
    out += "note: the trace was truncated; the sample did more than this report shows\n";
  }
  return out;
}

}  // namespace quell::cli
