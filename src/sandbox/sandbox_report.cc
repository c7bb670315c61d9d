#include "sandbox/sandbox_report.h"

#include <arpa/inet.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "sandbox/persistence_locations.h"

namespace quell::sandbox {
namespace {

using nlohmann::json;

enum class Implies { kNothing, kSuspicious, kMalicious };

struct Behavior {
  std::string category;
  std::string severity;
  std::string description;
  pid_t pid = 0;
  int64_t at_ms = 0;
  json details = json::object();
  Implies implies = Implies::kNothing;
};

// Low-severity behaviours of one kind beyond this are summarised in one line, so a sample
// writing 10,000 files yields a readable report.
constexpr size_t kMaxMinorPerCategory = 100;
constexpr size_t kMaxDescriptionArgv = 300;
constexpr std::string_view kSandboxResolver = "10.53.53.53";  // sandbox_network.h's resolv.conf
constexpr std::string_view kSandboxHostName = "sandbox";

std::string ErrnoName(int64_t result) {
  if (result >= 0) return "";
  const char* name = strerrorname_np(static_cast<int>(-result));
  return name ? name : "errno " + std::to_string(-result);
}

// " (failed: EROFS)" for a negative result, "" otherwise.
std::string Outcome(int64_t result, std::string_view verb = "failed") {
  if (result >= 0) return "";
  return " (" + std::string(verb) + ": " + ErrnoName(result) + ")";
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? "SIG" + std::string(abbrev) : "signal " + std::to_string(sig);
}

std::string Basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string Octal(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

std::string_view PersistenceThing(std::string_view category) {
  if (category == "cron") return "a cron job";
  if (category == "systemd") return "a systemd unit";
  if (category == "rc") return "an init script";
  if (category == "profile") return "a shell startup file";
  if (category == "authorized_keys") return "SSH authorized keys";
  if (category == "ld.so.preload") return "the dynamic linker's preload list";
  if (category == "udev") return "a udev rule";
  if (category == "xdg-autostart") return "a desktop autostart entry";
  if (category == "motd") return "a login message script";
  if (category == "sudoers") return "sudo rules";
  if (category == "accounts") return "the account database";
  if (category == "pam") return "PAM configuration";
  return "a persistence location";
}

std::string_view OperationName(FileOperation op) {
  switch (op) {
    case FileOperation::kCreate: return "create";
    case FileOperation::kWrite: return "write";
    case FileOperation::kRename: return "rename";
    case FileOperation::kDelete: return "delete";
    case FileOperation::kChmod: return "chmod";
  }
  return "write";
}

// IPv4 text of `address`, unwrapping IPv4-mapped IPv6 ("::ffff:1.2.3.4"); "" otherwise.
std::string AsIpv4(std::string_view address) {
  std::string text(address);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return text;
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1 && IN6_IS_ADDR_V4MAPPED(&v6)) {
    char out[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &v6.s6_addr[12], out, sizeof out);
    return out;
  }
  return "";
}

std::string Canonical(std::string_view address) {
  std::string v4 = AsIpv4(address);
  return v4.empty() ? std::string(address) : v4;
}

bool IsLoopbackOrUnspecified(std::string_view address) {
  std::string v4 = AsIpv4(address);
  if (!v4.empty()) return v4.starts_with("127.") || v4 == "0.0.0.0";
  return address == "::1" || address == "::";
}

bool IsLocalName(std::string_view raw) {
  std::string name(raw);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  while (!name.empty() && name.back() == '.') name.pop_back();
  auto ends_with_label = [&](std::string_view suffix) {
    return name == suffix.substr(1) || name.ends_with(suffix);
  };
  return name.empty() || name == kSandboxHostName || ends_with_label(".localhost") ||
         ends_with_label(".local") || ends_with_label(".localdomain") || ends_with_label(".arpa") ||
         name.find('.') == std::string::npos;  // a bare host name is a search-list lookup
}

bool IsInterpreter(std::string_view executable) {
  const std::string base = Basename(executable);
  static constexpr std::string_view kNames[] = {"sh",      "bash", "dash", "zsh", "ksh", "ash",
                                                "busybox", "perl", "ruby", "php", "node"};
  for (std::string_view name : kNames) {
    if (base == name) return true;
  }
  return base.starts_with("python");
}

bool IsDnsTransport(const std::string& address, uint16_t port, const std::string& protocol) {
  return port == 53 && (protocol == "udp" || Canonical(address) == kSandboxResolver);
}

class ReportBuilder {
 public:
  ReportBuilder(const SampleInfo& sample, const Observations& obs) : sample_(sample), obs_(obs) {}

  json Build() {
    CollectDropped();
    Persistence();
    Files();
    Processes();
    Identity();
    Privileged();
    Signals();
    Network();
    Limits();
    return Render();
  }

 private:
  void Add(Behavior b, bool minor = false) {
    if (minor) {
      size_t& n = minor_counts_[b.category];
      if (++n > kMaxMinorPerCategory) return;
    }
    behaviors_.push_back(std::move(b));
  }

  void CollectDropped() {
    for (const FileRecord& f : obs_.trace.files) {
      if (f.result < 0) continue;
      if (f.operation == FileOperation::kCreate || f.operation == FileOperation::kWrite) {
        written_.insert(f.path);
      } else if (f.operation == FileOperation::kRename) {
        written_.insert(f.new_path);
      }
    }
    // The supervisor's walk may list the sample's own copy; running that is not "dropped".
    for (const DroppedFile& d : obs_.dropped_files) {
      if (Basename(d.path) != sample_.file_name) written_.insert(d.path);
    }
  }

  void Persistence() {
    std::set<std::pair<std::string, FileOperation>> seen;
    for (const FileRecord& f : obs_.trace.files) {
      if (f.operation == FileOperation::kDelete) continue;
      const std::string& target = f.operation == FileOperation::kRename ? f.new_path : f.path;
      std::optional<std::string> category = PersistenceLocation(target);
      if (!category) continue;
      persistence_files_.insert(&f);
      if (!seen.emplace(target, f.operation).second) continue;
      Behavior b;
      b.category = "persistence";
      b.severity = "high";
      b.pid = f.pid;
      b.at_ms = f.at_ms;
      b.implies = Implies::kMalicious;
      std::string verb = f.operation == FileOperation::kRename  ? "moved into place"
                         : f.operation == FileOperation::kChmod ? "changed the mode of"
                                                                : "wrote";
      if (f.result < 0)
        verb = "tried to " +
               std::string(f.operation == FileOperation::kChmod ? "change the mode of" : "write");
      b.description =
          verb + " " + std::string(PersistenceThing(*category)) + " " + target + Outcome(f.result);
      b.details = {{"location", *category},
                   {"path", target},
                   {"operation", OperationName(f.operation)},
                   {"result", f.result}};
      if (f.operation == FileOperation::kRename) b.details["from"] = f.path;
      Add(std::move(b));
    }
  }

  void Files() {
    for (const FileRecord& f : obs_.trace.files) {
      if (persistence_files_.count(&f)) continue;
      Behavior b;
      b.category = "fileSystem";
      b.pid = f.pid;
      b.at_ms = f.at_ms;
      b.details = {
          {"path", f.path}, {"operation", OperationName(f.operation)}, {"result", f.result}};
      bool minor = true;
      switch (f.operation) {
        case FileOperation::kCreate:
          b.severity = "low";
          b.description =
              (f.result < 0 ? "tried to create " : "created ") + f.path + Outcome(f.result);
          b.details["mode"] = Octal(f.mode);
          break;
        case FileOperation::kWrite:
          b.severity = "informational";
          b.description =
              (f.result < 0 ? "tried to write " : "wrote ") + f.path + Outcome(f.result);
          break;
        case FileOperation::kRename:
          b.severity = "low";
          b.description = "renamed " + f.path + " to " + f.new_path + Outcome(f.result);
          b.details["newPath"] = f.new_path;
          break;
        case FileOperation::kChmod:
          b.details["mode"] = Octal(f.mode);
          if (f.mode & 0111) {
            b.severity = "medium";
            b.description =
                "made " + f.path + " executable (mode " + Octal(f.mode) + ")" + Outcome(f.result);
            minor = false;
          } else {
            b.severity = "informational";
            b.description =
                "changed the mode of " + f.path + " to " + Octal(f.mode) + Outcome(f.result);
          }
          break;
        case FileOperation::kDelete: {
          const std::string base = Basename(f.path);
          if (!sample_.file_name.empty() && base == sample_.file_name) {
            b.category = "evasion";
            b.severity = "medium";
            b.description = "deleted its own file " + f.path + Outcome(f.result);
            b.implies = Implies::kSuspicious;
            minor = false;
          } else if (f.path.starts_with("/var/log/") || base == ".bash_history" ||
                     base == ".zsh_history" || base == ".sh_history") {
            b.category = "evasion";
            b.severity = "medium";
            b.description = "deleted log or history file " + f.path + Outcome(f.result);
            b.implies = Implies::kSuspicious;
            minor = false;
          } else {
            b.severity = "informational";
            b.description =
                (f.result < 0 ? "tried to delete " : "deleted ") + f.path + Outcome(f.result);
          }
          break;
        }
      }
      Add(std::move(b), minor);
    }
  }

  void Processes() {
    for (const ProcessRecord& p : obs_.trace.processes) {
      if (p.executable.empty()) continue;
      std::string command;
      for (const std::string& arg : p.argv) {
        if (command.size() > kMaxDescriptionArgv) {
          command += " ...";
          break;
        }
        command += (command.empty() ? "" : " ") + arg;
      }
      Behavior b;
      b.category = "execution";
      b.severity = "informational";
      b.pid = p.pid;
      b.at_ms = p.started_ms;
      b.description = "started " + p.executable + (command.empty() ? "" : ": " + command);
      b.details = {{"executable", p.executable}, {"argv", p.argv}};
      Add(std::move(b), true);

      std::string dropped;
      if (written_.count(p.executable)) dropped = p.executable;
      // A dropped script run through an interpreter ("sh /tmp/x.sh"); other programs merely
      // naming the file ("chmod +x /tmp/x") do not execute it.
      for (size_t i = 1; dropped.empty() && IsInterpreter(p.executable) && i < p.argv.size(); ++i) {
        if (!p.argv[i].empty() && p.argv[i][0] == '/' && written_.count(p.argv[i]))
          dropped = p.argv[i];
      }
      if (dropped.empty()) continue;
      Behavior d;
      d.category = "execution";
      d.severity = "high";
      d.pid = p.pid;
      d.at_ms = p.started_ms;
      d.description = "executed a file it dropped: " + dropped;
      d.details = {{"path", dropped}, {"executable", p.executable}, {"argv", p.argv}};
      for (const DroppedFile& f : obs_.dropped_files) {
        if (f.path == dropped) d.details["sha256"] = f.sha256;
      }
      d.implies = Implies::kSuspicious;
      Add(std::move(d));
    }
  }

  void Identity() {
    for (const IdentityChange& c : obs_.trace.identity_changes) {
      std::string ids;
      for (int64_t id : c.ids) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
      Behavior b;
      b.category = "privilege";
      b.severity = "medium";
      b.pid = c.pid;
      b.at_ms = c.at_ms;
      b.description = "changed identity: " + c.call + "(" + ids + ")" + Outcome(c.result);
      b.details = {{"call", c.call}, {"ids", c.ids}, {"result", c.result}};
      b.implies = Implies::kSuspicious;
      Add(std::move(b));
    }
  }

  void Privileged() {
    static const std::set<std::string_view> kKernelCode = {
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load"};
    for (const PrivilegedCall& c : obs_.trace.privileged_calls) {
      Behavior b;
      b.pid = c.pid;
      b.at_ms = c.at_ms;
      b.details = {{"call", c.call}, {"detail", c.detail}, {"result", c.result}};
      const std::string detail = c.detail.empty() ? "" : " (" + c.detail + ")";
      const std::string outcome = Outcome(c.result, "refused");
      if (kKernelCode.count(c.call)) {
        b.category = "privilege";
        b.severity = "high";
        b.implies = Implies::kMalicious;
        b.description = (c.call.find("kexec") == 0 ? "tried to replace the running kernel: "
                                                   : "tried to load or remove kernel code: ") +
                        c.call + detail + outcome;
      } else if (c.call == "ptrace" && c.detail == "PTRACE_TRACEME") {
        b.category = "evasion";
        b.severity = "medium";
        b.implies = Implies::kSuspicious;
        b.description = "checked for a debugger (ptrace PTRACE_TRACEME)" + outcome;
      } else if (c.call == "ptrace" || c.call == "process_vm_writev") {
        b.category = "processInjection";
        b.severity = "high";
        b.implies = Implies::kMalicious;
        b.description = "tried to control or write another process: " + c.call + detail + outcome;
      } else {
        b.category = "privilege";
        b.severity = "medium";
        b.implies = Implies::kSuspicious;
        b.description = "made a privileged call: " + c.call + detail + outcome;
      }
      Add(std::move(b));
    }
  }

  void Signals() {
    for (const SignalRecord& s : obs_.trace.signals) {
      Behavior b;
      b.category = "process";
      b.pid = s.pid;
      b.at_ms = s.at_ms;
      b.details = {{"target", s.target},
                   {"signal", s.signal},
                   {"signalName", SignalName(s.signal)},
                   {"result", s.result}};
      if (s.target == 1 || s.target == -1) {
        b.severity = "medium";
        b.implies = Implies::kSuspicious;
        b.description =
            "sent " + SignalName(s.signal) +
            (s.target == 1 ? " to the init process (pid 1)" : " to every process it can reach") +
            Outcome(s.result);
      } else {
        b.severity = "low";
        b.description = "sent " + SignalName(s.signal) + " to " +
                        (s.target == 0  ? std::string("its own process group")
                         : s.target < 0 ? "process group " + std::to_string(-s.target)
                                       : "process " + std::to_string(s.target)) +
                        Outcome(s.result);
      }
      Add(std::move(b), true);
    }
  }

  std::string DomainOf(const std::string& address) const {
    const std::string v4 = Canonical(address);
    for (const DnsRecord& d : obs_.network.dns) {
      if (!d.answer.empty() && d.answer == v4) return d.name;
    }
    return "";
  }

  void AddDomain(const std::string& name) {
    if (std::find(domains_.begin(), domains_.end(), name) == domains_.end())
      domains_.push_back(name);
  }

  void Network() {
    // DNS: one behaviour per distinct name.
    std::map<std::string, std::set<std::string>> types;
    std::vector<const DnsRecord*> first;
    for (const DnsRecord& d : obs_.network.dns) {
      if (types[d.name].empty()) first.push_back(&d);
      types[d.name].insert(d.type);
    }
    for (const DnsRecord* d : first) {
      const bool local = IsLocalName(d->name);
      if (!local) AddDomain(d->name);
      std::string type_list;
      for (const std::string& t : types[d->name]) type_list += (type_list.empty() ? "" : ", ") + t;
      Behavior b;
      b.category = "network";
      b.severity = local ? "informational" : "medium";
      b.at_ms = d->at_ms;
      b.description = "looked up " + (local ? "the local name " : std::string()) + d->name + " (" +
                      type_list + ")";
      b.details = {{"name", d->name}, {"types", types[d->name]}, {"answer", d->answer}};
      b.implies = local ? Implies::kNothing : Implies::kSuspicious;
      Add(std::move(b), local);
    }

    // Connections: the tracer's view joined with the fake network's sessions.
    std::vector<bool> used(obs_.network.tcp.size(), false);
    auto session_for = [&](const std::string& address, uint16_t port) -> const TcpSessionRecord* {
      const std::string want = Canonical(address);
      for (size_t i = 0; i < obs_.network.tcp.size(); ++i) {
        const TcpSessionRecord& s = obs_.network.tcp[i];
        if (!used[i] && s.port == port && Canonical(s.address) == want) {
          used[i] = true;
          return &s;
        }
      }
      return nullptr;
    };
    std::set<std::string> unix_paths;
    for (const ConnectRecord& c : obs_.trace.connections) {
      if (c.family == "unix") {
        if (!unix_paths.insert(c.address).second) continue;  // once per socket path
        Behavior b;
        b.category = "network";
        b.severity = "informational";
        b.pid = c.pid;
        b.at_ms = c.at_ms;
        b.description = "connected to unix socket " + c.address + Outcome(c.result);
        b.details = {{"path", c.address}, {"result", c.result}};
        Add(std::move(b), true);
        continue;
      }
      if (IsDnsTransport(c.address, c.port, c.protocol)) continue;
      const TcpSessionRecord* s = c.protocol != "udp" ? session_for(c.address, c.port) : nullptr;
      AddConnection(c.pid, c.at_ms, c.address, c.port, c.protocol, c.result, s);
    }
    for (size_t i = 0; i < obs_.network.tcp.size(); ++i) {
      if (used[i]) continue;  // sessions the tracer did not see connect (e.g. i386 calls)
      const TcpSessionRecord& s = obs_.network.tcp[i];
      if (IsDnsTransport(s.address, s.port, "tcp")) continue;
      used[i] = true;
      AddConnection(0, s.at_ms, s.address, s.port, "tcp", 0, &s);
    }
  }

  void AddConnection(pid_t pid, int64_t at_ms, const std::string& address, uint16_t port,
                     const std::string& protocol, int64_t result, const TcpSessionRecord* session) {
    const std::string canonical = Canonical(address);
    const bool sinkhole = IsSinkholeAddress(canonical);
    const bool local = !sinkhole && IsLoopbackOrUnspecified(address);
    const std::string domain = sinkhole ? DomainOf(canonical) : "";
    if (!domain.empty()) AddDomain(domain);
    if (!sinkhole && !local && std::find(ips_.begin(), ips_.end(), canonical) == ips_.end()) {
      ips_.push_back(canonical);
    }
    auto key = std::make_tuple(canonical, port, protocol);
    auto existing = connection_index_.find(key);
    if (existing != connection_index_.end()) {
      json& entry = connections_[existing->second];
      if (session && entry["firstBytesHex"].get<std::string>().empty()) {
        entry["firstBytes"] = EscapeBytes(session->first_bytes);
        entry["firstBytesHex"] = HexBytes(session->first_bytes);
      }
      return;  // one entry and one behaviour per destination
    }
    json entry = {{"address", canonical},
                  {"port", port},
                  {"protocol", protocol},
                  {"domain", domain},
                  {"firstBytes", session ? EscapeBytes(session->first_bytes) : ""},
                  {"firstBytesHex", session ? HexBytes(session->first_bytes) : ""}};
    connection_index_[key] = connections_.size();
    connections_.push_back(entry);

    const std::string where = (domain.empty() ? canonical : domain + " (" + canonical + ")") +
                              " port " + std::to_string(port) +
                              (protocol.empty() ? "" : "/" + protocol);
    Behavior b;
    b.category = "network";
    b.pid = pid;
    b.at_ms = at_ms;
    b.details = entry;
    b.details["result"] = result;
    // A non-blocking connect reports EINPROGRESS and then completes: not a failure.
    const std::string outcome = result == -EINPROGRESS ? "" : Outcome(result);
    if (local) {
      b.severity = "informational";
      b.description = "connected to local address " + where + outcome;
    } else {
      b.severity = "medium";
      b.implies = Implies::kSuspicious;
      b.description = "connected out to " + where + outcome;
      if (session && !session->first_bytes.empty()) {
        b.description += ", sending \"" + EscapeBytes(session->first_bytes.substr(0, 40)) +
                         (session->first_bytes.size() > 40 ? "...\"" : "\"");
      }
    }
    Add(std::move(b), local);
  }

  void Limits() {
    const RunOutcome& o = obs_.outcome;
    auto add = [&](std::string severity, std::string description, std::string_view what) {
      Behavior b;
      b.category = "resourceAbuse";
      b.severity = std::move(severity);
      b.at_ms = o.duration_ms;
      b.description = std::move(description);
      b.details = {{"limit", what}};
      b.implies = Implies::kSuspicious;
      Add(std::move(b));
    };
    if (o.pids_limit_hit) add("high", "hit the process limit (fork bomb)", "pids");
    if (o.memory_limit_hit) add("high", "hit the memory limit", "memory");
    if (o.timed_out)
      add("medium", "was still running at the wall-clock limit and was killed", "wallClock");
  }

  json Render() {
    std::stable_sort(behaviors_.begin(), behaviors_.end(),
                     [](const Behavior& a, const Behavior& b) { return a.at_ms < b.at_ms; });
    Implies worst = Implies::kNothing;
    for (const Behavior& b : behaviors_) worst = std::max(worst, b.implies);
    json reasons = json::array();
    std::set<std::string> seen_reasons;
    json behaviors = json::array();
    for (const Behavior& b : behaviors_) {
      if (b.implies == worst && worst != Implies::kNothing &&
          seen_reasons.insert(b.description).second) {
        reasons.push_back(b.description);
      }
      behaviors.push_back({{"category", b.category},
                           {"severity", b.severity},
                           {"description", b.description},
                           {"pid", b.pid},
                           {"atMs", b.at_ms},
                           {"details", b.details}});
    }
    for (const auto& [category, n] : minor_counts_) {
      if (n <= kMaxMinorPerCategory) continue;
      behaviors.push_back({{"category", category},
                           {"severity", "informational"},
                           {"description", std::to_string(n - kMaxMinorPerCategory) + " more " +
                                               category + " behaviours not listed"},
                           {"pid", 0},
                           {"atMs", 0},
                           {"details", json::object()}});
    }
    if (worst == Implies::kNothing) {
      reasons.push_back(
          "no persistence, privileged calls, identity changes, outbound network activity, "
          "execution of dropped files or limit hits were observed");
    }
    const char* verdict = worst == Implies::kMalicious    ? "malicious"
                          : worst == Implies::kSuspicious ? "suspicious"
                                                          : "noThreatsFound";

    json dropped = json::array();
    for (const DroppedFile& f : obs_.dropped_files) {
      dropped.push_back(
          {{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}, {"executable", f.executable}});
    }
    json processes = json::array();
    for (const ProcessRecord& p : obs_.trace.processes) {
      processes.push_back({{"pid", p.pid},
                           {"parentPid", p.parent_pid},
                           {"executable", p.executable},
                           {"argv", p.argv},
                           {"exitCode", p.exit_code ? json(*p.exit_code) : json(nullptr)},
                           {"killedBy", p.killed_by ? json(*p.killed_by) : json(nullptr)}});
    }
    const RunOutcome& o = obs_.outcome;
    return {
        {"sample",
         {{"fileName", sample_.file_name},
          {"size", sample_.size},
          {"sha256", sample_.sha256},
          {"sha1", sample_.sha1},
          {"md5", sample_.md5},
          {"kind", sample_.kind}}},
        {"verdict", verdict},
        {"verdictReasons", reasons},
        {"behaviors", behaviors},
        {"observables",
         {{"domains", domains_},
          {"ips", ips_},
          {"connections", connections_},
          {"droppedFiles", dropped}}},
        {"processes", processes},
        {"limits",
         {{"timedOut", o.timed_out},
          {"memoryLimitHit", o.memory_limit_hit},
          {"pidsLimitHit", o.pids_limit_hit}}},
        {"startupMs", o.startup_ms},
        {"durationMs", o.duration_ms},
        {"truncated", obs_.trace.truncated || obs_.network.truncated},
    };
  }

  const SampleInfo& sample_;
  const Observations& obs_;
  std::vector<Behavior> behaviors_;
  std::map<std::string, size_t> minor_counts_;
  std::set<std::string> written_;  // paths the sample created/wrote/renamed into
  std::set<const FileRecord*> persistence_files_;
  std::vector<std::string> domains_;
  std::vector<std::string> ips_;
  json connections_ = json::array();
  std::map<std::tuple<std::string, uint16_t, std::string>, size_t> connection_index_;
};

}  // namespace

std::string EscapeBytes(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string HexBytes(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

bool IsSinkholeAddress(std::string_view address) {
  const std::string v4 = AsIpv4(address);
  return v4.starts_with("198.18.") || v4.starts_with("198.19.");
}

json BuildSandboxReport(const SampleInfo& sample, const Observations& observations) {
  return ReportBuilder(sample, observations).Build();
}

}  // namespace quell::sandbox
