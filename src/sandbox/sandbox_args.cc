#include "sandbox/sandbox_args.h"

#include <charconv>
#include <cmath>

namespace quell::sandbox {
namespace {

template <typename T>
Result<T> Number(const std::string& name, const std::string& text, T min, T max) {
  T value{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size() || !(value >= min && value <= max)) {
    return InvalidArgument("--" + name + " wants a number from " + std::to_string(min) + " to " +
                           std::to_string(max) + ", got '" + text + "'");
  }
  return value;
}

}  // namespace

const char kSandboxUsage[] =
    "usage: quell-sandbox --sample PATH --report OUT.json [--timeout-seconds 120]\n"
    "                     [--memory-mb 512] [--pids 128] [--cpus 1.0] [--file-name NAME]\n"
    "Detonates an ELF executable or a sh, bash, python3 or perl script in a throw-away\n"
    "sandbox (no real network) and writes a JSON behaviour report. Runs as root.\n"
    "Exit: 0 analysis completed, 1 the sandbox failed, 2 bad usage or unsupported file.\n";

Result<SandboxArgs> ParseSandboxArgs(const std::vector<std::string>& args) {
  SandboxArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      return out;
    }
    if (!arg.starts_with("--")) return InvalidArgument("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2), value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else {
      if (i + 1 >= args.size()) return InvalidArgument("--" + name + " needs a value");
      value = args[++i];
    }
    if (name == "sample") {
      out.options.sample_path = value;
    } else if (name == "report") {
      out.report_path = value;
    } else if (name == "file-name") {
      out.options.file_name = value;
    } else if (name == "timeout-seconds") {
      QUELL_ASSIGN_OR_RETURN(int64_t s, Number<int64_t>(name, value, 1, 86400));
      out.options.wall_clock = std::chrono::seconds(s);
    } else if (name == "memory-mb") {
      QUELL_ASSIGN_OR_RETURN(uint64_t mb, Number<uint64_t>(name, value, 16, 1ull << 20));
      out.options.memory_bytes = mb << 20;
    } else if (name == "pids") {
      QUELL_ASSIGN_OR_RETURN(out.options.max_pids, Number<uint32_t>(name, value, 4, 1u << 22));
    } else if (name == "cpus") {
      QUELL_ASSIGN_OR_RETURN(out.options.cpus, Number<double>(name, value, 0.01, 1024.0));
    } else {
      return InvalidArgument("unknown option --" + name);
    }
  }
  if (out.options.sample_path.empty()) return InvalidArgument("--sample is required");
  if (out.report_path.empty()) return InvalidArgument("--report is required");
  return out;
}

}  // namespace quell::sandbox
