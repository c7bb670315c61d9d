#include "cli/live_render.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "common/unique_fd.h"

namespace quell::cli {

std::string JsonString(const nlohmann::json& object, const char* key, const std::string& fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

int64_t JsonInt(const nlohmann::json& object, const char* key, int64_t fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

namespace {

std::string Duration(int64_t seconds) {
  if (seconds < 0) return "?";
  if (seconds % 60 != 0 || seconds < 60) return std::to_string(seconds) + " s";
  return std::to_string(seconds / 60) + " min";
}

}  // namespace

std::string RenderBanner(const nlohmann::json& session) {
  std::string host = JsonString(session, "computerDnsName", JsonString(session, "machineId", "?"));
  std::string out = "live response session on " + host;
  const std::string machine = JsonString(session, "machineId");
  if (!machine.empty() && machine != host) out += " (machine " + machine + ")";
  out += "\nsession " + JsonString(session, "sessionId", "?");
  const std::string role = JsonString(session, "role");
  if (!role.empty()) out += ", role " + role;
  out += ", closes after " + Duration(JsonInt(session, "idleTimeoutSeconds")) + " idle";
  out += "\ntype help for the commands, exit or Ctrl-D to end the session\n";
  return out;
}

std::string RenderPrompt(const std::string& host, const std::string& cwd) {
  return host + ":" + (cwd.empty() ? "?" : cwd) + "$ ";
}

std::string RenderJobLine(const nlohmann::json& job) {
  return "[" + std::to_string(JsonInt(job, "commandId")) + "] " + JsonString(job, "status", "?");
}

std::string RenderDoneError(const nlohmann::json& done) {
  const std::string status = JsonString(done, "status", "?");
  if (status == "Completed") return "";
  const std::string error = JsonString(done, "error");
  return "error: " + status + (error.empty() ? "" : ": " + error);
}

std::string RenderClosed(const nlohmann::json& closed) {
  const std::string reason = JsonString(closed, "reason");
  return "session closed" + (reason.empty() ? std::string() : ": " + reason);
}

std::string RenderServerError(const nlohmann::json& error) {
  return "error: " + JsonString(error, "error", "(no message)");
}

std::optional<std::vector<std::string>> SplitCommandLine(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'') {
      size_t end = line.find('\'', i + 1);
      if (end == std::string::npos) return std::nullopt;
      word += line.substr(i + 1, end - i - 1);
      in_word = true;
      i = end;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size() && (line[j + 1] == '"' || line[j + 1] == '\\')) ++j;
        word += line[j];
      }
      if (j >= line.size()) return std::nullopt;
      in_word = true;
      i = j;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::optional<std::string> GetfilePath(const std::string& line) {
  auto words = SplitCommandLine(line);
  if (!words || words->empty() || (*words)[0] != "getfile") return std::nullopt;
  std::vector<std::string> args;
  for (size_t i = 1; i < words->size(); ++i) {
    if ((*words)[i] == "-output" && i + 1 < words->size()) {
      ++i;
      continue;
    }
    args.push_back((*words)[i]);
  }
  if (!args.empty() && args.back() == "&") args.pop_back();
  if (args.size() != 1) return std::nullopt;
  return args[0];
}

std::optional<std::string> SafeBaseName(const std::string& remote_path) {
  std::string path = remote_path;
  while (!path.empty() && path.back() == '/') path.pop_back();  // "dir/" names "dir"
  const size_t slash = path.rfind('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.empty() || name == "." || name == "..") return std::nullopt;
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return std::nullopt;
  }
  return name;
}

Result<std::string> ReserveDownloadPath(const std::string& dir, const std::string& name) {
  if (!SafeBaseName(name) || *SafeBaseName(name) != name) {
    return InvalidArgument("unsafe local file name '" + name + "'");
  }
  const std::string base = (dir.empty() ? std::string(".") : dir) + "/" + name;
  for (int n = 0; n < 10000; ++n) {
    std::string path = n == 0 ? base : base + "." + std::to_string(n);
    // ApiClient::Download writes "<path>.part" (truncating it): keep clear of one that exists.
    if (::access((path + ".part").c_str(), F_OK) == 0) continue;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd) return path;
    if (errno != EEXIST) return ErrnoStatus("create " + path);
  }
  return ResourceExhausted("too many files named " + base + ".N");
}

std::string EscapeControls(const std::string& text) {
  static const char* kHex = "0123456789abcdef";
  auto hex = [](unsigned char c) {
    return std::string("\\x") + kHex[c >> 4] + kHex[c & 15];
  };
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || c == '\t') {
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += hex(c);
    } else if (c == 0xc2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      out += hex(static_cast<unsigned char>(text[i + 1]));  // a C1 control as UTF-8
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace quell::cli
