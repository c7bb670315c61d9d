// The last line of defence of an investigation package: whatever a collector adds is screened
// for secrets that must never leave the device — private keys and password hashes. What holds
// one is removed, and only that: a line (a whole PEM or PuTTY key block), or a JSON string
// value, is replaced by a marker saying what was removed. Removing no more than that matters:
// otherwise anyone who can get such a string logged or into a process's arguments could make
// a whole log, process list or cron file disappear from the package.
//
// Collectors also avoid such files by name (IsPasswordHashFile, private key files); this
// catches what they cannot know about (a key pasted into a profile script, a shadow copy under
// another name, a command that prints one).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace quell::agent::collect {

// "a private key" / "a password hash" when `text` holds one; nullopt otherwise.
std::optional<std::string> FindSecret(std::string_view text);

// Whether `path` names a password-hash database (/etc/shadow, gshadow, their backups,
// opasswd), refused before it is even opened.
bool IsPasswordHashFile(std::string_view path);

// Removes secrets from text streamed through it in chunks of any size, line by line: a line
// with a password hash becomes a marker line; a private key block (BEGIN to END, or a PuTTY key
// file's private part) becomes one marker line. Lines longer than 64 KiB are screened in
// pieces. Output preserves everything else byte for byte.
class SecretRedactor {
 public:
  // The screened text of the complete lines in `chunk` (with what came before).
  std::string Feed(std::string_view chunk);
  // The screened rest (a last line without '\n'). Call once at the end.
  std::string Finish();
  uint32_t removed() const { return removed_; }

 private:
  std::string ScreenLine(std::string_view line);  // line includes its '\n' if it had one

  std::string pending_;    // an incomplete line
  bool in_key_ = false;    // inside a private key block
  bool putty_ = false;     // ... of a PuTTY key file (ends after "Private-MAC:")
  uint32_t removed_ = 0;   // secrets removed so far
};

// The whole of `text` through a SecretRedactor; `removed` gets the count.
std::string RedactSecrets(std::string_view text, uint32_t* removed);

// Every string in `value` (keys and values) that holds a secret replaced by a marker.
// Returns how many were replaced.
uint32_t RedactSecretsInJson(nlohmann::json& value);

}  // namespace quell::agent::collect
