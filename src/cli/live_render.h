// What `quell live` prints for the server's messages, and the local decisions around them
// (the prompt, the name a fetched file is saved under). Pure functions, tested alone.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace quell::cli {

// The banner for {"type":"session"}: machine, session id, role, idle timeout, "type help".
std::string RenderBanner(const nlohmann::json& session);
// "<host>:<cwd>$ ".
std::string RenderPrompt(const std::string& host, const std::string& cwd);
// "[<id>] <status>" for {"type":"job"}.
std::string RenderJobLine(const nlohmann::json& job);
// For a {"type":"done"} whose status is not Completed: "error: <status>: <error>" (or
// "error: <status>" without an error text); "" when it Completed.
std::string RenderDoneError(const nlohmann::json& done);
// "session closed: <reason>" for {"type":"closed"}.
std::string RenderClosed(const nlohmann::json& closed);
// "error: <error>" for {"type":"error"}.
std::string RenderServerError(const nlohmann::json& error);

// Splits a command line as the server does: words on blanks, '..' quotes without escapes,
// ".." quotes with \" and \\. Unbalanced quotes give nullopt.
std::optional<std::vector<std::string>> SplitCommandLine(const std::string& line);
// The remote path of a `getfile <path>` line (ignoring "-output <fmt>" and a trailing "&"),
// or nullopt when the line is not one.
std::optional<std::string> GetfilePath(const std::string& line);

// The name a remote file is saved under locally: its final path component only, so a remote
// "../../x" or "/etc/passwd" cannot place a file outside the download directory. nullopt for
// an empty name, ".", "..", or a name with control characters.
std::optional<std::string> SafeBaseName(const std::string& remote_path);

// Creates (O_EXCL, mode 0600) and returns "<dir>/<name>", or "<dir>/<name>.1", ".2", ... when
// that exists, so an existing file is never overwritten. The caller fills the reserved file
// or removes it.
Result<std::string> ReserveDownloadPath(const std::string& dir, const std::string& name);

// Text from the device made harmless for a terminal: output, file and process names are
// under an attacker's control on a compromised host, and escape sequences in them could
// rewrite the screen or the terminal's settings. Keeps newline and tab; shows other control
// bytes (C0, DEL, and the C1 range U+0080..U+009F) as "\xNN".
std::string EscapeControls(const std::string& text);

// A string field of a JSON object, or `fallback` when missing or not a string.
std::string JsonString(const nlohmann::json& object, const char* key,
                       const std::string& fallback = "");
// An integer field, or `fallback`.
int64_t JsonInt(const nlohmann::json& object, const char* key, int64_t fallback = -1);

}  // namespace quell::cli
