// "Network connections": the socket table with owning processes (sockets.json, all of it as
// connections.txt, and listening_ports.txt for what accepts traffic), the resolver and hosts
// files, and — when commands may run — addresses, routes, neighbours and the nftables ruleset.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"
#include "agent/collect/socket_table.h"

namespace quell::agent::collect {
namespace {

constexpr std::string_view kTopic = "Network connections";

// `host_path` with its symlinks resolved as the host would, but inside sources.root: an absolute
// target is taken under root and ".." never climbs above it. /etc/resolv.conf is usually a
// link into /run, and the staging copy refuses links. nullopt when the chain is too long.
std::optional<std::string> ResolveInRoot(const CollectSources& sources, std::string host_path) {
  namespace fs = std::filesystem;
  for (int hops = 0; hops < 16; ++hops) {
    const std::string path = files::Under(sources, host_path);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
    std::error_code ec;
    fs::path target = fs::read_symlink(path, ec);
    if (ec) return path;
    fs::path next = target.is_absolute() ? target : fs::path(host_path).parent_path() / target;
    // Lexically normal and rooted: "/etc/../../x" becomes "/x".
    fs::path clean = fs::path("/");
    for (const fs::path& part : next.lexically_normal().relative_path()) {
      if (part == "..") {
        clean = clean.has_relative_path() ? clean.parent_path() : clean;
      } else if (part != ".") {
        clean /= part;
      }
    }
    host_path = clean.string();
  }
  return std::nullopt;
}

void CopyHostFile(const CollectSources& sources, PackageStaging& out, std::string_view host_path,
                  std::string_view name) {
  auto resolved = ResolveInRoot(sources, std::string(host_path));
  if (!resolved) {
    out.RecordFailure(kTopic, files::Under(sources, host_path), "too many levels of symbolic links");
    return;
  }
  out.AddFileCopy(kTopic, name, *resolved);
}

}  // namespace

void CollectNetwork(const CollectSources& sources, PackageStaging& out) {
  if (out.Exhausted()) return;
  auto sockets = ListSockets(sources.proc_root);
  if (sockets.ok()) {
    const std::string source = sources.proc_root + "/net";
    out.AddJson(kTopic, "sockets.json", SocketsToJson(*sockets), source);
    out.AddText(kTopic, "connections.txt", SocketsTableText(*sockets), source);
    std::vector<SocketRecord> listening;
    std::copy_if(sockets->begin(), sockets->end(), std::back_inserter(listening), IsListening);
    out.AddText(kTopic, "listening_ports.txt", SocketsTableText(listening), source);
  } else {
    out.RecordFailure(kTopic, sources.proc_root + "/net", sockets.status().message());
  }

  CopyHostFile(sources, out, "/etc/resolv.conf", "resolv.conf");
  CopyHostFile(sources, out, "/etc/hosts", "hosts");

  if (!sources.run_commands) return;
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"ip_address.txt", {"ip", "-d", "address"}},
      {"ip_route.txt", {"ip", "route", "show", "table", "all"}},
      {"ip6_route.txt", {"ip", "-6", "route", "show", "table", "all"}},
      {"ip_neigh.txt", {"ip", "neigh"}},
      {"nft_ruleset.txt", {"nft", "list", "ruleset"}},
  };
  for (const auto& [name, argv] : commands) {
    if (out.Exhausted()) return;
    out.AddCommandOutput(kTopic, name, argv);
  }
}

}  // namespace quell::agent::collect
