#include "sandbox/persistence_locations.h"

#include <vector>

namespace quell::sandbox {
namespace {

enum class Match {
  kExact,       // the path itself
  kDirectory,   // the directory or anything under it
  kNamePrefix,  // any path whose text starts with the pattern
};

struct Rule {
  std::string_view pattern;
  Match match;
  std::string_view category;
};

// Absolute locations.
constexpr Rule kSystemRules[] = {
    {"/etc/crontab", Match::kExact, "cron"},
    {"/etc/cron.", Match::kNamePrefix, "cron"},
    {"/etc/anacrontab", Match::kExact, "cron"},
    {"/var/spool/cron", Match::kDirectory, "cron"},
    {"/var/spool/anacron", Match::kDirectory, "cron"},
    {"/var/spool/at", Match::kDirectory, "cron"},
    {"/etc/systemd/system", Match::kDirectory, "systemd"},
    {"/etc/systemd/user", Match::kDirectory, "systemd"},
    {"/lib/systemd/system", Match::kDirectory, "systemd"},
    {"/lib/systemd/user", Match::kDirectory, "systemd"},
    {"/usr/lib/systemd/system", Match::kDirectory, "systemd"},
    {"/usr/lib/systemd/user", Match::kDirectory, "systemd"},
    {"/run/systemd/system", Match::kDirectory, "systemd"},
    {"/run/systemd/user", Match::kDirectory, "systemd"},
    {"/etc/rc.local", Match::kExact, "rc"},
    {"/etc/init.d", Match::kDirectory, "rc"},
    {"/etc/rc.d", Match::kDirectory, "rc"},
    {"/etc/inittab", Match::kExact, "rc"},
    {"/etc/profile", Match::kExact, "profile"},
    {"/etc/profile.d", Match::kDirectory, "profile"},
    {"/etc/bash.bashrc", Match::kExact, "profile"},
    {"/etc/bashrc", Match::kExact, "profile"},
    {"/etc/environment", Match::kExact, "profile"},
    {"/etc/zsh", Match::kDirectory, "profile"},
    {"/etc/ld.so.preload", Match::kExact, "ld.so.preload"},
    {"/etc/udev/rules.d", Match::kDirectory, "udev"},
    {"/lib/udev/rules.d", Match::kDirectory, "udev"},
    {"/usr/lib/udev/rules.d", Match::kDirectory, "udev"},
    {"/etc/xdg/autostart", Match::kDirectory, "xdg-autostart"},
    {"/etc/update-motd.d", Match::kDirectory, "motd"},
    {"/etc/sudoers", Match::kExact, "sudoers"},
    {"/etc/sudoers.d", Match::kDirectory, "sudoers"},
    {"/etc/passwd", Match::kExact, "accounts"},
    {"/etc/shadow", Match::kExact, "accounts"},
    {"/etc/group", Match::kExact, "accounts"},
    {"/etc/gshadow", Match::kExact, "accounts"},
    {"/etc/pam.d", Match::kDirectory, "pam"},
};

// Locations relative to a home directory (no leading slash).
constexpr Rule kHomeRules[] = {
    {".config/systemd/user", Match::kDirectory, "systemd"},
    {".local/share/systemd/user", Match::kDirectory, "systemd"},
    {".bashrc", Match::kExact, "profile"},
    {".profile", Match::kExact, "profile"},
    {".bash_profile", Match::kExact, "profile"},
    {".bash_login", Match::kExact, "profile"},
    {".bash_logout", Match::kExact, "profile"},
    {".zshrc", Match::kExact, "profile"},
    {".zprofile", Match::kExact, "profile"},
    {".zshenv", Match::kExact, "profile"},
    {".zlogin", Match::kExact, "profile"},
    {".ssh/authorized_keys", Match::kNamePrefix, "authorized_keys"},
    {".config/autostart", Match::kDirectory, "xdg-autostart"},
};

std::string Tidy(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t i = 0;
  while (i <= path.size()) {
    size_t next = path.find('/', i);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(i, next - i);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    i = next + 1;
  }
  std::string out;
  for (std::string_view seg : segments) {
    out += '/';
    out += seg;
  }
  return out.empty() ? "/" : out;
}

bool Matches(std::string_view path, const Rule& rule) {
  switch (rule.match) {
    case Match::kExact: return path == rule.pattern;
    case Match::kDirectory:
      return path == rule.pattern ||
             (path.starts_with(rule.pattern) && path.size() > rule.pattern.size() &&
              path[rule.pattern.size()] == '/');
    case Match::kNamePrefix: {
      // "/etc/cron." needs a name after the dot; ".ssh/authorized_keys" matches itself too.
      const size_t min = rule.pattern.size() + (rule.pattern.back() == '.' ? 1 : 0);
      return path.size() >= min && path.starts_with(rule.pattern);
    }
  }
  return false;
}

// `path` relative to the home directory it is in (/root/x -> x, /home/u/x -> x), or nullopt.
std::optional<std::string_view> InHome(std::string_view path) {
  if (path.starts_with("/root/")) return path.substr(6);
  if (path.starts_with("/home/")) {
    size_t slash = path.find('/', 6);
    if (slash == std::string_view::npos || slash == 6) return std::nullopt;
    return path.substr(slash + 1);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> PersistenceLocation(std::string_view raw) {
  if (raw.empty() || raw[0] != '/') return std::nullopt;
  const std::string path = Tidy(raw);
  // /etc/rc<runlevel>.d: rc0.d ... rc6.d, rcS.d.
  if (path.size() >= 10 && path.starts_with("/etc/rc") && path[8] == '.' && path[9] == 'd' &&
      (path.size() == 10 || path[10] == '/')) {
    return "rc";
  }
  for (const Rule& rule : kSystemRules) {
    if (Matches(path, rule)) return std::string(rule.category);
  }
  if (std::optional<std::string_view> rel = InHome(path)) {
    for (const Rule& rule : kHomeRules) {
      if (Matches(*rel, rule)) return std::string(rule.category);
    }
  }
  return std::nullopt;
}

}  // namespace quell::sandbox
