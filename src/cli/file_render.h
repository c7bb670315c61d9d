// What `quell file collect|show|download|analyze` print, and the checks of their arguments.
// Pure functions, tested alone (file_render_test.cc). Everything taken from the server is
// text a device or a sample controlled (file names, paths, argv, domains, first bytes), so it
// is printed through EscapeControls (live_render.h), one-line fields with newlines escaped too.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "common/status.h"

namespace quell::cli {

// Exit codes of `quell file analyze` beyond cli_context.h's: the verdict of a completed
// analysis. (A server that cannot be reached exits 1 there, not kExitTransport = 3, so that
// 3 always means "suspicious".)
constexpr int kExitUsage = 2;
constexpr int kExitSuspicious = 3;
constexpr int kExitMalicious = 4;

// 0 noThreatsFound, kExitSuspicious, kExitMalicious; 1 (kExitApiError) for anything else: a
// verdict this CLI does not know is not reported as clean.
int VerdictExitCode(const std::string& verdict);

// The SHA-256 `text` names, lowercased; nullopt unless it is 64 hex digits.
std::optional<std::string> NormalizeSha256(const std::string& text);

// The password of a download zip: 8 to 128 characters (as the server requires), no control
// characters. The error's message never contains the password.
Status CheckZipPassword(const std::string& password);

// The password in the contents of a --password-file: the first line, without its "\n" or
// "\r\n". InvalidArgument (without the contents) when the file holds more than one line.
Result<std::string> PasswordFromFile(const std::string& contents);

// The body of POST /api/machines/{id}/collectFile for a file given by exactly one of `path`
// and `sha256`; InvalidArgument naming the problem otherwise.
Result<nlohmann::json> CollectFileBody(const std::string& path, const std::string& sha256,
                                       const std::string& comment);

// A name for the download zip built from the collected file's name: "<name>.zip" when the
// name is plain ([A-Za-z0-9._+-], not "." or ".."), otherwise "<sha256>.zip". Safe to paste
// into a shell: a device chooses its file names.
std::string SuggestedZipName(const std::string& file_name, const std::string& sha256);

// `text` escaped for one line: EscapeControls, and newline and tab as \x0a and \x09 too, so
// a name cannot start a line of its own that looks like part of the output.
std::string OneLine(const std::string& text);

// After `quell file collect` succeeded: the CollectFile action's result
// ({"Path","FileName","Size","Sha256",...}) as SHA-256, size, name, where it came from, and
// the commands to download and analyze it.
std::string RenderCollectedFile(const nlohmann::json& result);

// GET /api/files/{sha256} as text: hashes, size and name; whether the server holds it and
// where it was collected; the devices it was seen on; the latest deep analysis.
std::string RenderFileInfo(const nlohmann::json& file);

// One progress line of a deep analysis: "<status>: <stage>" (or "<status>" without a stage).
std::string RenderAnalysisProgress(const nlohmann::json& analysis);

// The report of a deep analysis: from its "report" field, an object or a JSON string; a null
// JSON when there is none.
nlohmann::json AnalysisReport(const nlohmann::json& analysis);

// The summary of a Succeeded deep analysis (GET /api/files/{sha256}/deepAnalysis with its
// report): verdict and reasons, the sample, behaviours grouped by severity (high, medium,
// low, informational, then any other), observables (domains, IPs, connections with their
// first bytes, dropped files with hashes), processes, the limits hit, truncation.
std::string RenderAnalysisSummary(const nlohmann::json& analysis);

}  // namespace quell::cli
