#include "agent/quarantine/file_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>

#include "common/base64.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/logging.h"

namespace quell::agent::quarantine {
namespace {

auto Log() {
  static auto log = Logger("agent.quarantine");
  return log;
}

int64_t Ns(const struct timespec& ts) { return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec; }
struct timespec Ts(int64_t ns) {
  struct timespec ts {};
  ts.tv_sec = ns / 1'000'000'000LL;
  ts.tv_nsec = ns % 1'000'000'000LL;
  return ts;
}

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + what);
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

nlohmann::json BytesToJson(const std::string& bytes) {
  try {
    (void)nlohmann::json(bytes).dump();
    return bytes;
  } catch (const nlohmann::json::exception&) {
    return nlohmann::json{{"base64", Base64Encode(bytes)}};
  }
}

Result<std::string> BytesFromJson(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("base64") && j["base64"].is_string()) {
    return Base64Decode(j["base64"].get<std::string>());
  }
  return InvalidArgument("expected a string or {\"base64\": ...}");
}

Result<Xattrs> ReadXattrs(int fd) {
  Xattrs out;
  ssize_t len = ::flistxattr(fd, nullptr, 0);
  if (len < 0) {
    if (errno == ENOTSUP) return out;
    return ErrnoStatus("flistxattr");
  }
  std::string names(static_cast<size_t>(len), '\0');
  len = ::flistxattr(fd, names.data(), names.size());
  if (len < 0) return ErrnoStatus("flistxattr");
  names.resize(static_cast<size_t>(len));
  size_t start = 0;
  while (start < names.size()) {
    size_t end = names.find('\0', start);
    if (end == std::string::npos) end = names.size();
    std::string name = names.substr(start, end - start);
    start = end + 1;
    if (name.empty()) continue;
    ssize_t vlen = ::fgetxattr(fd, name.c_str(), nullptr, 0);
    if (vlen < 0) {
      if (errno == ENODATA) continue;  // removed meanwhile
      return ErrnoStatus("fgetxattr " + name);
    }
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
    if (vlen < 0) return ErrnoStatus("fgetxattr " + name);
    value.resize(static_cast<size_t>(vlen));
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

Status WriteXattrs(int fd, const Xattrs& xattrs) {
  Status first;
  for (const auto& [name, value] : xattrs) {
    if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0 && first.ok()) {
      first = ErrnoStatus("fsetxattr " + name);
    }
  }
  return first;
}

nlohmann::json XattrsToJson(const Xattrs& xattrs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [name, value] : xattrs) {
    out.push_back({{"name", BytesToJson(name)}, {"value", BytesToJson(value)}});
  }
  return out;
}

Result<Xattrs> XattrsFromJson(const nlohmann::json& j) {
  Xattrs out;
  if (!j.is_array()) return InvalidArgument("xattrs must be an array");
  for (const auto& item : j) {
    if (!item.is_object() || !item.contains("name") || !item.contains("value")) {
      return InvalidArgument("xattr entries need name and value");
    }
    QUELL_ASSIGN_OR_RETURN(std::string name, BytesFromJson(item["name"]));
    QUELL_ASSIGN_OR_RETURN(std::string value, BytesFromJson(item["value"]));
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

std::string ParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string JoinRoot(const std::string& root, std::string_view abs_path) {
  if (root.empty() || root == "/") return std::string(abs_path);
  std::string r = root;
  while (!r.empty() && r.back() == '/') r.pop_back();
  return r + std::string(abs_path);
}

std::optional<DirTimes> ReadDirTimes(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return std::nullopt;
  return DirTimes{Ns(st.st_atim), Ns(st.st_mtim)};
}

Status WriteDirTimes(const std::string& dir, const DirTimes& times) {
  struct timespec ts[2] = {Ts(times.atime_ns), Ts(times.mtime_ns)};
  if (::utimensat(AT_FDCWD, dir.c_str(), ts, 0) != 0) return ErrnoStatus("utimensat " + dir);
  return Status::Ok();
}

Result<FileState> CaptureFileState(const std::string& path, uint64_t max_bytes) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus("lstat " + path);
  FileState s;
  s.path = path;
  s.mode = st.st_mode & 07777;
  s.uid = st.st_uid;
  s.gid = st.st_gid;
  s.atime_ns = Ns(st.st_atim);
  s.mtime_ns = Ns(st.st_mtim);
  s.parent = ReadDirTimes(ParentDir(path));
  if (S_ISLNK(st.st_mode)) {
    s.type = FileState::Type::kSymlink;
    std::string target(static_cast<size_t>(st.st_size) + 256, '\0');
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoStatus("readlink " + path);
    target.resize(static_cast<size_t>(n));
    s.content = std::move(target);
    return s;
  }
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(path + " is not a regular file or symlink");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return FailedPrecondition(path + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path);
  std::string content;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status e = ErrnoStatus("read " + path);
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
    if (content.size() > max_bytes) {
      ::close(fd);
      return FailedPrecondition(path + " grew past " + std::to_string(max_bytes) + " bytes");
    }
  }
  auto xattrs = ReadXattrs(fd);
  ::close(fd);
  if (!xattrs.ok()) return xattrs.status().WithContext(path);
  s.content = std::move(content);
  s.xattrs = std::move(*xattrs);
  return s;
}

Status PutFileState(const FileState& state, std::optional<std::string> content,
                    bool restore_times) {
  const std::string dir = ParentDir(state.path);
  QUELL_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  const std::string tmp = dir + "/.quell-quarantine-" + RandomHex(8) + ".tmp";
  const std::string& bytes = content.has_value() ? *content : state.content;
  struct timespec times[2] = {Ts(state.atime_ns), Ts(state.mtime_ns)};
  if (state.type == FileState::Type::kSymlink) {
    if (::symlink(bytes.c_str(), tmp.c_str()) != 0) return ErrnoStatus("symlink " + tmp);
    if (::lchown(tmp.c_str(), state.uid, state.gid) != 0) {
      Status e = ErrnoStatus("lchown " + tmp);
      ::unlink(tmp.c_str());
      return e;
    }
    if (restore_times) ::utimensat(AT_FDCWD, tmp.c_str(), times, AT_SYMLINK_NOFOLLOW);
  } else {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return ErrnoStatus("create " + tmp);
    auto fail = [&](Status s) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    };
    if (Status s = WriteAll(fd, bytes, tmp); !s.ok()) return fail(s);
    // Owner before mode: chown clears setuid/setgid bits. Xattrs after both: chown also
    // drops security.capability.
    if (::fchown(fd, state.uid, state.gid) != 0) return fail(ErrnoStatus("fchown " + tmp));
    if (::fchmod(fd, state.mode) != 0) return fail(ErrnoStatus("fchmod " + tmp));
    if (Status s = WriteXattrs(fd, state.xattrs); !s.ok()) {
      Log()->warn("{}: not every extended attribute could be put back: {}", state.path,
                  s.ToString());
    }
    if (restore_times && ::futimens(fd, times) != 0) return fail(ErrnoStatus("futimens " + tmp));
    if (::fsync(fd) != 0) return fail(ErrnoStatus("fsync " + tmp));
    ::close(fd);
  }
  if (::rename(tmp.c_str(), state.path.c_str()) != 0) {
    Status e = ErrnoStatus("rename to " + state.path);
    ::unlink(tmp.c_str());
    return e;
  }
  SyncDir(dir);
  if (restore_times && state.parent.has_value()) {
    if (Status s = WriteDirTimes(dir, *state.parent); !s.ok()) {
      Log()->warn("{}", s.ToString());
    }
  }
  return Status::Ok();
}

Status RemovePath(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink " + path);
  SyncDir(ParentDir(path));
  return Status::Ok();
}

nlohmann::json FileStateToJson(const FileState& s) {
  nlohmann::json j = {
      {"type", s.type == FileState::Type::kSymlink ? "symlink" : "file"},
      {"path", BytesToJson(s.path)},
      {"content", BytesToJson(s.content)},
      {"mode", s.mode},
      {"uid", s.uid},
      {"gid", s.gid},
      {"atimeNs", s.atime_ns},
      {"mtimeNs", s.mtime_ns},
      {"xattrs", XattrsToJson(s.xattrs)},
  };
  if (s.parent.has_value()) {
    j["parentAtimeNs"] = s.parent->atime_ns;
    j["parentMtimeNs"] = s.parent->mtime_ns;
  }
  return j;
}

Result<FileState> FileStateFromJson(const nlohmann::json& j) {
  try {
    FileState s;
    s.type = j.at("type").get<std::string>() == "symlink" ? FileState::Type::kSymlink
                                                           : FileState::Type::kRegular;
    QUELL_ASSIGN_OR_RETURN(s.path, BytesFromJson(j.at("path")));
    QUELL_ASSIGN_OR_RETURN(s.content, BytesFromJson(j.at("content")));
    s.mode = j.at("mode").get<uint32_t>();
    s.uid = j.at("uid").get<uint32_t>();
    s.gid = j.at("gid").get<uint32_t>();
    s.atime_ns = j.at("atimeNs").get<int64_t>();
    s.mtime_ns = j.at("mtimeNs").get<int64_t>();
    QUELL_ASSIGN_OR_RETURN(s.xattrs, XattrsFromJson(j.at("xattrs")));
    if (j.contains("parentMtimeNs")) {
      s.parent = DirTimes{j.at("parentAtimeNs").get<int64_t>(), j.at("parentMtimeNs").get<int64_t>()};
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("malformed file record: ") + e.what());
  }
}

}  // namespace quell::agent::quarantine
