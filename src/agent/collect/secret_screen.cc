#include "agent/collect/secret_screen.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace quell::agent::collect {
namespace {

constexpr size_t kMaxLine = 64 * 1024;

bool IsHashChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '/' || c == '$' ||
         c == '=' || c == ',';
}

// A crypt(3) hash as stored in shadow: ":$<id>$<salt and hash>" with 16+ hash characters and
// an id crypt knows (1 md5, 2a/2b/2y bcrypt, 5/6 sha, y/gy yescrypt, 7 scrypt).
bool HasPasswordHash(std::string_view text) {
  static constexpr std::array<std::string_view, 9> kIds = {"1", "2a", "2b", "2y", "5",
                                                          "6", "y",  "gy", "7"};
  for (size_t at = text.find(":$"); at != std::string_view::npos; at = text.find(":$", at + 1)) {
    std::string_view rest = text.substr(at + 2);
    for (std::string_view id : kIds) {
      if (rest.size() <= id.size() || !rest.starts_with(id) || rest[id.size()] != '$') continue;
      size_t n = 0;
      for (char c : rest.substr(id.size() + 1)) {
        if (!IsHashChar(c)) break;
        ++n;
      }
      if (n >= 16) return true;
    }
  }
  return false;
}

bool IsKeyBegin(std::string_view line) {
  size_t begin = line.find("-----BEGIN ");
  return begin != std::string_view::npos &&
         line.find("PRIVATE KEY-----", begin) != std::string_view::npos;
}

bool IsKeyEnd(std::string_view line) {
  size_t end = line.find("-----END ");
  return end != std::string_view::npos &&
         line.find("PRIVATE KEY-----", end) != std::string_view::npos;
}

std::string_view Trimmed(std::string_view line) {
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.remove_suffix(1);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
  return line;
}

// A line that can be part of a PEM or PuTTY key body: base64, or a header such as
// "Proc-Type: 4,ENCRYPTED", "DEK-Info: ...", "Private-Lines: 5", or empty.
bool IsKeyBodyLine(std::string_view line) {
  if (size_t colon = line.find(": "); colon != std::string_view::npos && colon > 0) {
    return std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
  }
  return std::all_of(line.begin(), line.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=';
  });
}

std::string Marker(std::string_view what, std::string_view line) {
  return std::string("[removed by Quell: ") + std::string(what) + "]" +
         (line.ends_with('\n') ? "\n" : "");
}

}  // namespace

std::optional<std::string> FindSecret(std::string_view text) {
  if (IsKeyBegin(text) || text.find("PuTTY-User-Key-File") != std::string_view::npos) {
    return "a private key";
  }
  if (HasPasswordHash(text)) return "a password hash";
  return std::nullopt;
}

bool IsPasswordHashFile(std::string_view path) {
  std::string_view base = path.substr(path.rfind('/') + 1);
  return base == "shadow" || base == "shadow-" || base == "gshadow" || base == "gshadow-" ||
         path.ends_with("/security/opasswd");
}

std::string SecretRedactor::ScreenLine(std::string_view line) {
  if (in_key_) {
    const std::string_view body = Trimmed(line);
    if (putty_ ? body.starts_with("Private-MAC:") : IsKeyEnd(body)) {
      in_key_ = false;
      return "";
    }
    // A key block holds only base64 and "Header: value" lines; anything else ends it, so a
    // planted header can never swallow the lines after it.
    if (IsKeyBodyLine(body)) return "";
    in_key_ = false;
  }
  const std::string_view body = Trimmed(line);
  if (body.starts_with("-----BEGIN ") && body.ends_with("PRIVATE KEY-----")) {
    ++removed_;
    in_key_ = true;
    putty_ = false;
    return Marker("a private key", line);
  }
  if (body.starts_with("PuTTY-User-Key-File")) {
    ++removed_;
    in_key_ = true;
    putty_ = true;
    return Marker("a private key", line);
  }
  // A key header or marker inside other text, or a password hash: that line only.
  if (std::optional<std::string> secret = FindSecret(line)) {
    ++removed_;
    return Marker("a line holding " + *secret, line);
  }
  return std::string(line);
}

std::string SecretRedactor::Feed(std::string_view chunk) {
  std::string out;
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    size_t take = nl == std::string_view::npos ? chunk.size() : nl + 1;
    pending_.append(chunk.substr(0, take));
    chunk.remove_prefix(take);
    if (pending_.ends_with('\n') || pending_.size() >= kMaxLine) {
      out += ScreenLine(pending_);
      pending_.clear();
    }
  }
  return out;
}

std::string SecretRedactor::Finish() {
  std::string out = pending_.empty() ? "" : ScreenLine(pending_);
  pending_.clear();
  return out;
}

std::string RedactSecrets(std::string_view text, uint32_t* removed) {
  SecretRedactor redactor;
  std::string out = redactor.Feed(text);
  out += redactor.Finish();
  if (removed != nullptr) *removed = redactor.removed();
  return out;
}

uint32_t RedactSecretsInJson(nlohmann::json& value) {
  uint32_t removed = 0;
  if (value.is_string()) {
    if (std::optional<std::string> secret = FindSecret(value.get_ref<const std::string&>())) {
      value = "[removed by Quell: " + *secret + "]";
      return 1;
    }
  } else if (value.is_array()) {
    for (auto& v : value) removed += RedactSecretsInJson(v);
  } else if (value.is_object()) {
    nlohmann::json screened = nlohmann::json::object();
    for (auto& [key, v] : value.items()) {
      removed += RedactSecretsInJson(v);
      std::string k = key;
      if (std::optional<std::string> secret = FindSecret(k)) {
        k = "[removed by Quell: " + *secret + "]";
        ++removed;
      }
      screened[k] = std::move(v);
    }
    value = std::move(screened);
  }
  return removed;
}

}  // namespace quell::agent::collect
