#include "cli/file_commands.h"

#include <fcntl.h>
#include <stdio.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/action_progress.h"
#include "cli/downloads.h"
#include "cli/file_render.h"
#include "cli/live_render.h"
#include "common/files.h"
#include "common/unique_fd.h"

namespace quell::cli {
namespace {

using nlohmann::json;

struct FileFlags {
  struct {
    std::string machine, path, sha256;
    std::string comment = "File collected with the quell CLI";
    bool no_wait = false;
    int wait_seconds = 3600;
  } collect;
  struct {
    std::string sha256, output;
  } show;
  struct {
    std::string sha256, output, password, password_file;
    std::string comment = "Downloaded with the quell CLI";
    bool force = false;
  } download;
  struct {
    std::string sha256, machine, output;
    std::string comment = "Deep analysis requested with the quell CLI";
    bool no_wait = false;
    int timeout_seconds = 1800;
  } analyze;
};

// The sample's hash from a command line, or "" after printing why it is not one.
std::string Sha256Argument(CliContext& ctx, const std::string& text) {
  std::optional<std::string> hash = NormalizeSha256(text);
  if (!hash) ctx.err << "error: '" << OneLine(text) << "' is not a SHA-256 (64 hex digits)\n";
  return hash.value_or("");
}

// The message and code of an API error answer {"error":{"code","message"}}.
struct ApiError {
  std::string code, message;
};
ApiError ErrorOf(const ApiResponse& response) {
  json body = json::parse(response.body, nullptr, false);
  ApiError e{"", response.body.substr(0, 300)};
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    e.code = JsonString(body["error"], "code");
    e.message = JsonString(body["error"], "message", e.message);
  }
  return e;
}
void PrintApiError(CliContext& ctx, const ApiResponse& response) {
  ApiError e = ErrorOf(response);
  ctx.err << "error: " << OneLine(e.message) << " (HTTP " << response.status
          << (e.code.empty() ? "" : " " + OneLine(e.code)) << ")\n";
}

// ---- collect ----------------------------------------------------------------------------

int Collect(CliContext& ctx, const FileFlags& flags) {
  const auto& f = flags.collect;
  Result<json> body = CollectFileBody(f.path, f.sha256, f.comment);
  if (!body.ok()) {
    ctx.err << "error: " << body.status().message() << "\n";
    return kExitUsage;
  }
  const std::string id = ResolveMachineId(ctx, f.machine);
  if (id.empty()) return kExitApiError;
  CallResult r = CallApi(ctx, "POST", "/api/machines/" + UrlEncode(id) + "/collectFile", *body);
  if (r.exit_code != 0) return r.exit_code;
  const std::string action_id = Field(r.body, "id");
  if (f.no_wait) {
    if (!PrintJsonIfAsked(ctx, r.body)) PrintActionLine(ctx, r.body);
    return 0;
  }
  ctx.err << "collection " << OneLine(action_id) << " requested on "
          << OneLine(Field(r.body, "computerDnsName")) << "\n";
  json action;
  if (int code = FollowActionProgress(ctx, action_id, f.wait_seconds, "collection", action); code != 0) {
    return code;
  }
  if (Field(action, "status") != "Succeeded") {
    ctx.err << "error: collection " << OneLine(action_id) << " " << OneLine(Field(action, "status"))
            << ": " << OneLine(Field(action, "statusMessage")) << "\n";
    return kExitApiError;
  }
  if (PrintJsonIfAsked(ctx, action)) return 0;
  json result = action.contains("result") ? action["result"] : json();
  if (result.is_string()) result = json::parse(result.get<std::string>(), nullptr, false);
  ctx.out << RenderCollectedFile(result.is_object() ? result : json::object());
  return 0;
}

// ---- show -------------------------------------------------------------------------------

int Show(CliContext& ctx, const FileFlags& flags) {
  const std::string sha256 = Sha256Argument(ctx, flags.show.sha256);
  if (sha256.empty()) return kExitUsage;
  CallResult r = CallApi(ctx, "GET", "/api/files/" + sha256);
  if (r.exit_code != 0) return r.exit_code;
  if (PrintJsonIfAsked(ctx, r.body)) return 0;
  ctx.out << RenderFileInfo(r.body);
  return 0;
}

// ---- download ---------------------------------------------------------------------------

// Restores a terminal's settings when it goes out of scope.
class EchoOff {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) != 0) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    active_ = ::tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
  }
  ~EchoOff() {
    if (active_) ::tcsetattr(fd_, TCSAFLUSH, &saved_);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// One line typed on the terminal at `fd` without echo; nullopt at end of input.
std::optional<std::string> ReadHidden(CliContext& ctx, int fd, const char* prompt) {
  ctx.err << prompt << std::flush;
  EchoOff quiet(fd);
  std::string line;
  char c;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ctx.err << "\n";
      return std::nullopt;
    }
    if (c == '\n') break;
    line += c;
  }
  ctx.err << "\n";
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// The zip password from --password, --password-file or the terminal (at most one of the
// options is set); "" after printing why there is none. The password itself is never printed.
std::string ZipPassword(CliContext& ctx, const FileFlags& flags, int& exit_code) {
  const auto& f = flags.download;
  exit_code = kExitUsage;
  std::string password;
  if (!f.password_file.empty()) {
    Result<std::string> contents = ReadFile(f.password_file);
    if (!contents.ok()) {
      ctx.err << "error: cannot read the password file: " << contents.status().message() << "\n";
      return "";
    }
    Result<std::string> line = PasswordFromFile(*contents);
    if (!line.ok()) {
      ctx.err << "error: " << f.password_file << ": " << line.status().message() << "\n";
      return "";
    }
    password = *line;
  } else if (!f.password.empty()) {
    password = f.password;
  } else if (::isatty(STDIN_FILENO) == 1) {
    std::optional<std::string> first = ReadHidden(ctx, STDIN_FILENO, "password for the zip: ");
    if (!first) {
      ctx.err << "error: no password given\n";
      return "";
    }
    if (Status ok = CheckZipPassword(*first); !ok.ok()) {
      ctx.err << "error: " << ok.message() << "\n";
      return "";
    }
    std::optional<std::string> again = ReadHidden(ctx, STDIN_FILENO, "the same again: ");
    if (!again || *again != *first) {
      ctx.err << "error: the passwords differ\n";
      return "";
    }
    password = *first;
  } else {
    ctx.err << "error: the zip needs a password: give --password-file FILE or --password P "
               "(stdin is not a terminal to ask on)\n";
    return "";
  }
  if (Status ok = CheckZipPassword(password); !ok.ok()) {
    ctx.err << "error: " << ok.message() << "\n";
    return "";
  }
  exit_code = 0;
  return password;
}

std::string FirstBytes(const std::string& path, size_t n) {
  std::string bytes(n, '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  bytes.resize(static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return bytes;
}

// A hidden name beside `path` for the download in progress.
std::string TempBeside(const std::string& path) {
  const std::filesystem::path target(path);
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  return (dir / ("." + target.filename().string() + "." + std::to_string(::getpid()) + ".part"))
      .string();
}

// Moves the finished download `temp` to `path`: replacing what is there only with `replace`,
// so a file that appeared meanwhile is not overwritten either. `temp` is gone afterwards.
Status MoveIntoPlace(const std::string& temp, const std::string& path, bool replace) {
  Status status;
  if (replace) {
    if (::rename(temp.c_str(), path.c_str()) != 0) status = ErrnoStatus("rename to " + path);
  } else if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    // Filesystems without RENAME_NOREPLACE: a hard link fails the same way when path exists.
    if (errno != EINVAL && errno != ENOSYS) {
      status = errno == EEXIST ? AlreadyExists(path + " exists; choose another -o or add --force")
                               : ErrnoStatus("rename to " + path);
    } else if (::link(temp.c_str(), path.c_str()) != 0) {
      status = errno == EEXIST ? AlreadyExists(path + " exists; choose another -o or add --force")
                               : ErrnoStatus("link " + path);
    }
  }
  ::unlink(temp.c_str());  // the link fallback and failures leave it; a rename did not
  return status;
}

int Download(CliContext& ctx, const FileFlags& flags) {
  const auto& f = flags.download;
  const std::string sha256 = Sha256Argument(ctx, f.sha256);
  if (sha256.empty()) return kExitUsage;
  if (!f.password.empty() && !f.password_file.empty()) {
    ctx.err << "error: give --password or --password-file, not both\n";
    return kExitUsage;
  }
  if (Status ok = CheckZipPassword(f.password); !f.password.empty() && !ok.ok()) {
    ctx.err << "error: " << ok.message() << "\n";
    return kExitUsage;
  }
  std::error_code ec;
  if (!f.force && std::filesystem::exists(f.output, ec)) {
    ctx.err << "error: " << f.output << " exists; choose another -o or add --force\n";
    return kExitApiError;
  }
  const std::filesystem::path parent = std::filesystem::path(f.output).parent_path();
  if (::access(parent.empty() ? "." : parent.c_str(), W_OK) != 0) {
    ctx.err << "error: cannot write into " << (parent.empty() ? "." : parent.string()) << ": "
            << std::strerror(errno) << "\n";
    return kExitApiError;
  }
  // Whether the server holds the file, before asking for a password.
  CallResult info = CallApi(ctx, "GET", "/api/files/" + sha256);
  if (info.exit_code != 0) return info.exit_code;
  const bool collected = info.body.is_object() && info.body.value("collected", false);
  if (!collected) {
    ctx.err << "error: the server does not hold this file; collect it first: quell file collect "
               "<machine> --sha256 "
            << sha256 << "\n";
    return kExitApiError;
  }
  int exit_code = 0;
  const std::string password = ZipPassword(ctx, flags, exit_code);
  if (exit_code != 0) return exit_code;

  Result<ApiClientOptions> options = ResolveClientOptions(ctx);
  if (!options.ok()) {
    ctx.err << "error: " << options.status().message() << "\n";
    return kExitTransport;
  }
  // Streamed to disk: a zip of a 3 GiB sample never sits in memory. Building it takes the
  // server a while before the first byte, hence the long per-read timeout.
  const uint64_t size = static_cast<uint64_t>(std::max<int64_t>(JsonInt(info.body, "size", 0), 0));
  options->timeout = std::chrono::seconds(1800);
  ApiClient client(std::move(*options));
  ctx.err << "downloading " << sha256 << " (" << HumanSize(size) << ") as an encrypted zip\n";
  const std::string temp = TempBeside(f.output);
  Result<ApiResponse> got = client.Download(
      "POST", "/api/files/" + sha256 + "/download",
      json{{"Password", password}, {"Comment", f.comment}}.dump(), temp);
  if (!got.ok()) {
    ::unlink(temp.c_str());
    ctx.err << "error: " << got.status().message() << "\n";
    return kExitTransport;
  }
  if (got->status / 100 != 2) {
    PrintApiError(ctx, *got);
    return kExitApiError;
  }
  if (FirstBytes(temp, 4) != std::string("PK\x03\x04", 4)) {
    ::unlink(temp.c_str());
    ctx.err << "error: the server's answer is not a zip (" << OneLine(got->content_type) << ")\n";
    return kExitApiError;
  }
  std::error_code size_ec;
  const uintmax_t zip_size = std::filesystem::file_size(temp, size_ec);
  if (Status saved = MoveIntoPlace(temp, f.output, f.force); !saved.ok()) {
    ctx.err << "error: " << saved.message() << "\n";
    return kExitApiError;
  }
  if (PrintJsonIfAsked(ctx, {{"file", f.output}, {"size", zip_size}, {"sha256", sha256}})) {
    return 0;
  }
  ctx.out << "saved " << f.output << " (" << HumanSize(zip_size)
          << "): a zip encrypted with AES-256 holding the file " << sha256
          << "\nopen it with: 7z x " << f.output << "\n";
  return 0;
}

// ---- analyze ----------------------------------------------------------------------------

// Follows the newest analysis of `sha256` until it is final or `timeout_seconds` pass,
// printing each change of status or stage. Returns 0 with it in `analysis`, or the exit code.
int FollowAnalysis(CliContext& ctx, const std::string& sha256, int timeout_seconds,
                   json& analysis) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  std::string last = RenderAnalysisProgress(analysis);
  ctx.err << "  " << last << "\n";
  for (;;) {
    const std::string status = Field(analysis, "status");
    if (status == "Succeeded" || status == "Failed") return 0;
    if (std::chrono::steady_clock::now() > deadline) {
      ctx.err << "error: the analysis did not finish within " << timeout_seconds
              << " s; it continues on the server (follow it again: quell file analyze " << sha256
              << ")\n";
      return kExitApiError;
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    CallResult r = CallApi(ctx, "GET", "/api/files/" + sha256 + "/deepAnalysis");
    if (r.exit_code != 0) return kExitApiError;  // not kExitTransport: 3 means "suspicious"
    analysis = r.body;
    const std::string now = RenderAnalysisProgress(analysis);
    if (now != last) ctx.err << "  " << now << "\n";
    last = now;
  }
}

int Analyze(CliContext& ctx, const FileFlags& flags) {
  const auto& f = flags.analyze;
  const std::string sha256 = Sha256Argument(ctx, f.sha256);
  if (sha256.empty()) return kExitUsage;
  if (f.timeout_seconds <= 0) {
    ctx.err << "error: --timeout-seconds must be positive\n";
    return kExitUsage;
  }
  json body = {{"Comment", f.comment}};
  if (!f.machine.empty()) {
    const std::string id = ResolveMachineId(ctx, f.machine);
    if (id.empty()) return kExitApiError;
    body["MachineId"] = id;
  }
  ApiClient* client = Client(ctx);
  if (client == nullptr) return kExitApiError;
  const std::string target = "/api/files/" + sha256 + "/deepAnalysis";
  Result<ApiResponse> created = client->Send("POST", target, body.dump());
  if (!created.ok()) {
    ctx.err << "error: " << created.status().message() << "\n";
    return kExitApiError;
  }
  json analysis;
  if (created->status / 100 == 2) {
    analysis = json::parse(created->body, nullptr, false);
    ctx.err << "analysis " << OneLine(Field(analysis, "id")) << " of " << sha256 << " requested\n";
  } else if (created->status == 400 && ErrorOf(*created).code == "ActiveRequestAlreadyExists") {
    CallResult open = CallApi(ctx, "GET", target);
    if (open.exit_code != 0) return kExitApiError;
    analysis = open.body;
    ctx.err << "following analysis " << OneLine(Field(analysis, "id")) << " of " << sha256
            << ", already requested by " << OneLine(Field(analysis, "requestor")) << "\n";
  } else {
    PrintApiError(ctx, *created);
    return kExitApiError;
  }
  if (!analysis.is_object()) {
    ctx.err << "error: the server's answer is not an analysis\n";
    return kExitApiError;
  }
  if (f.no_wait) {
    if (!PrintJsonIfAsked(ctx, analysis)) {
      ctx.out << "analysis " << OneLine(Field(analysis, "id")) << ": "
              << RenderAnalysisProgress(analysis) << "\n";
    }
    return 0;
  }
  if (int code = FollowAnalysis(ctx, sha256, f.timeout_seconds, analysis); code != 0) return code;
  if (Field(analysis, "status") == "Failed") {
    ctx.err << "error: analysis " << OneLine(Field(analysis, "id"))
            << " failed: " << OneLine(Field(analysis, "error")) << "\n";
    PrintJsonIfAsked(ctx, analysis);
    return kExitApiError;
  }
  if (!PrintJsonIfAsked(ctx, analysis)) ctx.out << RenderAnalysisSummary(analysis);
  json report = AnalysisReport(analysis);
  std::string verdict = JsonString(report, "verdict");
  if (verdict.empty()) verdict = JsonString(analysis, "verdict");
  return VerdictExitCode(verdict);
}

// `--output text|json` and `--json` on a command: either sets ctx.json (the global --json
// only works before the command name).
void AddOutputOptions(CLI::App* command, CliContext& ctx, std::string& output) {
  command->add_flag("--json", ctx.json, "Print the API's JSON");
  command->add_option("--output", output, "text (default) or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->each([&ctx](const std::string& v) { ctx.json = ctx.json || v == "json"; });
}

}  // namespace

void AddFileCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  auto flags = std::make_shared<FileFlags>();
  CLI::App* file = app.get_subcommand("file");

  auto* collect = file->add_subcommand(
      "collect", "Collect a file from a device as a sample on the server (to download, analyze)");
  auto& c = flags->collect;
  collect->add_option("machine", c.machine, "Machine id or computer name")->required();
  collect->add_option("path", c.path, "Absolute path of the file on the device");
  collect->add_option("--sha256", c.sha256,
                      "Instead of a path: the file's SHA-256 (found where the device saw it)");
  collect->add_option("--comment,-c", c.comment, "Why (recorded in the audit log)")
      ->capture_default_str();
  collect->add_flag("--no-wait", c.no_wait, "Print the action and return at once");
  collect->add_option("--wait-seconds", c.wait_seconds, "How long to follow the collection")
      ->capture_default_str();
  collect->add_flag("--json", ctx.json, "Print the API's JSON");
  collect->callback([&ctx, &exit_code, flags] { exit_code = Collect(ctx, *flags); });

  auto* show = file->add_subcommand(
      "show", "What the server knows of a file: hashes, collections, devices, analysis");
  show->add_option("sha256", flags->show.sha256, "The file's SHA-256")->required();
  AddOutputOptions(show, ctx, flags->show.output);
  show->callback([&ctx, &exit_code, flags] { exit_code = Show(ctx, *flags); });

  auto* download = file->add_subcommand(
      "download", "Download a collected file as a zip encrypted (AES-256) with your password");
  download->footer(
      "Without --password or --password-file the password is asked for twice on the terminal "
      "(without echo). The zip is written beside -o and moved there when complete.");
  auto& d = flags->download;
  download->add_option("sha256", d.sha256, "The file's SHA-256")->required();
  download->add_option("-o,--output", d.output, "Where to save the zip (never overwritten "
                                                "without --force)")->required();
  download->add_option("--password", d.password,
                       "The zip's password, 8 to 128 characters (visible to other local users "
                       "in the process list: prefer --password-file)");
  download->add_option("--password-file", d.password_file,
                       "A file whose first line is the zip's password");
  download->add_option("--comment,-c", d.comment, "Why (recorded in the audit log)")
      ->capture_default_str();
  download->add_flag("--force", d.force, "Replace the output file if it exists");
  download->add_flag("--json", ctx.json, "Print what was saved as JSON");
  download->callback([&ctx, &exit_code, flags] { exit_code = Download(ctx, *flags); });

  auto* analyze = file->add_subcommand(
      "analyze", "Detonate a file in quell-sandbox and summarise what it did");
  analyze->footer(
      "Follows an analysis already open for the file instead of starting another.\n"
      "Exit status: 0 no threats found, 3 suspicious, 4 malicious, 1 the analysis failed or "
      "could not be followed (an unreachable server included), 2 invalid arguments.");
  auto& a = flags->analyze;
  analyze->add_option("sha256", a.sha256, "The file's SHA-256")->required();
  analyze->add_option("--machine,-m", a.machine,
                      "Device to collect the file from when the server does not hold it yet");
  analyze->add_option("--comment,-c", a.comment, "Why (recorded in the audit log)")
      ->capture_default_str();
  analyze->add_flag("--no-wait", a.no_wait, "Print the analysis and return at once");
  analyze->add_option("--timeout-seconds", a.timeout_seconds, "How long to follow the analysis")
      ->capture_default_str();
  AddOutputOptions(analyze, ctx, a.output);
  analyze->callback([&ctx, &exit_code, flags] { exit_code = Analyze(ctx, *flags); });
}

}  // namespace quell::cli
