#include "agent/collect/socket_table.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <charconv>
#include <cstring>
#include <iterator>

#include "agent/collect/process_table.h"
#include "common/files.h"

namespace quell::agent::collect {
namespace {

constexpr std::string_view kTables[] = {"tcp", "tcp6", "udp", "udp6"};

template <typename T>
bool ParseHex(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

template <typename T>
bool ParseDecimal(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string_view> SplitWhitespace(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// "0100007F:0016" -> address and port.
bool ParseEndpoint(std::string_view field, std::string& address, uint16_t& port) {
  size_t colon = field.find(':');
  if (colon == std::string_view::npos) return false;
  auto decoded = DecodeProcNetAddress(field.substr(0, colon));
  if (!decoded || !ParseHex(field.substr(colon + 1), port)) return false;
  address = std::move(*decoded);
  return true;
}

// Entry names of `dir`; `denied` is set when it exists but may not be read.
std::vector<std::string> DirNames(const std::string& dir, bool* denied = nullptr) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (denied != nullptr && errno == EACCES) *denied = true;
    return out;
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") out.emplace_back(name);
  }
  ::closedir(d);
  return out;
}

std::string Endpoint(const std::string& address, uint16_t port, bool wildcard_port) {
  std::string host = address.find(':') != std::string::npos ? "[" + address + "]" : address;
  return host + ":" + (port == 0 && wildcard_port ? "*" : std::to_string(port));
}

std::string OwnersText(const std::vector<SocketOwner>& owners, bool known) {
  if (owners.empty()) return known ? "-" : "?";
  std::string out;
  for (const SocketOwner& o : owners) {
    if (!out.empty()) out += ',';
    out += std::to_string(o.pid) + "/" + EscapeForText(o.name);
  }
  return out;
}

}  // namespace

std::optional<std::string> DecodeProcNetAddress(std::string_view hex) {
  if (hex.size() != 8 && hex.size() != 32) return std::nullopt;
  unsigned char bytes[16];
  for (size_t w = 0; w < hex.size() / 8; ++w) {
    uint32_t word = 0;
    if (!ParseHex(hex.substr(w * 8, 8), word)) return std::nullopt;
    // The kernel printed the word from memory as a native integer; memcpy puts the bytes back
    // in the order they had in memory, i.e. network order.
    std::memcpy(bytes + w * 4, &word, 4);
  }
  char text[INET6_ADDRSTRLEN];
  int family = hex.size() == 8 ? AF_INET : AF_INET6;
  if (::inet_ntop(family, bytes, text, sizeof text) == nullptr) return std::nullopt;
  return std::string(text);
}

std::string SocketStateName(bool tcp, uint8_t code) {
  // include/net/tcp_states.h
  static constexpr const char* kTcp[] = {"UNKNOWN",   "ESTABLISHED", "SYN_SENT",   "SYN_RECV",
                                         "FIN_WAIT1", "FIN_WAIT2",   "TIME_WAIT",  "CLOSE",
                                         "CLOSE_WAIT", "LAST_ACK",   "LISTEN",     "CLOSING",
                                         "NEW_SYN_RECV"};
  if (!tcp) {
    if (code == 1) return "ESTABLISHED";
    if (code == 7) return "UNCONN";
  }
  if (code < std::size(kTcp)) return kTcp[code];
  return "UNKNOWN(" + std::to_string(code) + ")";
}

bool IsListening(const SocketRecord& s) {
  return s.proto.starts_with("tcp") ? s.state == "LISTEN" : s.state == "UNCONN";
}

std::vector<SocketRecord> ParseProcNet(std::string_view proto, std::string_view text) {
  const bool tcp = proto.starts_with("tcp");
  std::vector<SocketRecord> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    std::vector<std::string_view> f = SplitWhitespace(line);
    if (f.size() < 10 || !f[0].ends_with(':')) continue;  // also skips the header
    SocketRecord s;
    s.proto = std::string(proto);
    uint8_t state = 0;
    if (!ParseEndpoint(f[1], s.local_address, s.local_port) ||
        !ParseEndpoint(f[2], s.remote_address, s.remote_port) || !ParseHex(f[3], state) ||
        !ParseDecimal(f[7], s.uid) || !ParseDecimal(f[9], s.inode)) {
      continue;
    }
    s.state = SocketStateName(tcp, state);
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<uint64_t> ParseSocketLink(std::string_view target) {
  constexpr std::string_view kPrefix = "socket:[";
  if (!target.starts_with(kPrefix) || !target.ends_with(']')) return std::nullopt;
  uint64_t inode = 0;
  if (!ParseDecimal(target.substr(kPrefix.size(), target.size() - kPrefix.size() - 1), inode)) {
    return std::nullopt;
  }
  return inode;
}

std::map<uint64_t, std::vector<SocketOwner>> MapSocketOwners(const std::string& proc_root,
                                                             bool* complete) {
  std::map<uint64_t, std::vector<SocketOwner>> out;
  bool denied = false;
  for (const std::string& entry : DirNames(proc_root)) {
    pid_t pid = 0;
    if (!ParseDecimal(std::string_view(entry), pid) || pid <= 0) continue;
    const std::string base = proc_root + "/" + entry;
    std::string name;
    bool named = false;
    for (const std::string& fd : DirNames(base + "/fd", &denied)) {
      char buf[64];
      ssize_t n = ::readlink((base + "/fd/" + fd).c_str(), buf, sizeof buf);
      if (n < 0 && errno == EACCES) denied = true;
      if (n <= 0) continue;
      auto inode = ParseSocketLink(std::string_view(buf, static_cast<size_t>(n)));
      if (!inode) continue;
      if (!named) {
        named = true;
        if (auto comm = ReadFile(base + "/comm"); comm.ok()) {
          name = *comm;
          if (name.ends_with('\n')) name.pop_back();
        }
      }
      std::vector<SocketOwner>& owners = out[*inode];
      if (owners.empty() || owners.back().pid != pid) owners.push_back({pid, name});
    }
  }
  for (auto& [inode, owners] : out) {
    std::sort(owners.begin(), owners.end(),
              [](const SocketOwner& a, const SocketOwner& b) { return a.pid < b.pid; });
  }
  if (complete != nullptr) *complete = !denied;
  return out;
}

Result<std::vector<SocketRecord>> ListSockets(const std::string& proc_root) {
  std::vector<SocketRecord> out;
  bool any = false;
  for (std::string_view table : kTables) {
    auto text = ReadFile(proc_root + "/net/" + std::string(table));
    if (!text.ok()) continue;
    any = true;
    std::vector<SocketRecord> parsed = ParseProcNet(table, *text);
    std::move(parsed.begin(), parsed.end(), std::back_inserter(out));
  }
  if (!any) return NotFound("no socket table readable under " + proc_root + "/net");
  bool complete = true;
  auto owners = MapSocketOwners(proc_root, &complete);
  for (SocketRecord& s : out) {
    if (s.inode == 0) continue;  // TIME_WAIT and the like: no process holds them
    if (auto it = owners.find(s.inode); it != owners.end()) {
      s.owners = it->second;
    } else {
      s.owners_known = complete;
    }
  }
  return out;
}

nlohmann::json SocketsToJson(const std::vector<SocketRecord>& sockets) {
  nlohmann::json out = nlohmann::json::array();
  for (const SocketRecord& s : sockets) {
    nlohmann::json owners = nlohmann::json::array();
    for (const SocketOwner& o : s.owners) {
      owners.push_back({{"pid", o.pid}, {"name", ValidUtf8(o.name)}});
    }
    out.push_back({{"proto", s.proto},
                   {"local_address", s.local_address},
                   {"local_port", s.local_port},
                   {"remote_address", s.remote_address},
                   {"remote_port", s.remote_port},
                   {"state", s.state},
                   {"listening", IsListening(s)},
                   {"uid", s.uid},
                   {"inode", s.inode},
                   {"owners", std::move(owners)},
                   {"owners_known", s.owners_known}});
  }
  return out;
}

std::string SocketsTableText(const std::vector<SocketRecord>& sockets) {
  std::vector<std::array<std::string, 6>> rows;
  rows.push_back({"PROTO", "LOCAL", "REMOTE", "STATE", "UID", "PID/NAME"});
  for (const SocketRecord& s : sockets) {
    const bool wildcard = IsListening(s);
    rows.push_back({s.proto, Endpoint(s.local_address, s.local_port, false),
                    Endpoint(s.remote_address, s.remote_port, wildcard), s.state,
                    std::to_string(s.uid), OwnersText(s.owners, s.owners_known)});
  }
  std::array<size_t, 6> width{};
  for (const auto& r : rows) {
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      line += r[c];
      if (c + 1 < r.size()) line.append(width[c] - r[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace quell::agent::collect
