// quell-sandbox: detonates one sample and writes its behaviour report. Thin: parsing is
// sandbox_args, the run is sandbox_runner, the report is sandbox_report.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/hash.h"
#include "common/unique_fd.h"
#include "sandbox/sample_kind.h"
#include "sandbox/sandbox_args.h"
#include "sandbox/sandbox_report.h"
#include "sandbox/sandbox_runner.h"

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "sandbox: error: %s\n", message.c_str());
  return code;
}

// What the report says about the sample itself; InvalidArgument for an unsupported type.
quell::Result<quell::sandbox::SampleInfo> DescribeSample(const quell::sandbox::SandboxOptions& o) {
  using namespace quell;
  UniqueFd fd(::open(o.sample_path.c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + o.sample_path);
  char head[sandbox::kSampleHeadBytes];
  ssize_t n = ::pread(fd.get(), head, sizeof head, 0);
  if (n < 0) return ErrnoStatus("read " + o.sample_path);
  std::string name = o.file_name;
  if (name.empty()) name = o.sample_path.substr(o.sample_path.rfind('/') + 1);
  QUELL_ASSIGN_OR_RETURN(
      sandbox::SampleKind kind,
      sandbox::DetectSampleKind(std::string_view(head, static_cast<size_t>(n)), name));
  QUELL_ASSIGN_OR_RETURN(FileHashes hashes, HashFd(fd.get()));
  return sandbox::SampleInfo{name,        hashes.size, hashes.sha256,
                             hashes.sha1, hashes.md5,  std::string(sandbox::SampleKindName(kind))};
}

}  // namespace

int main(int argc, char** argv) {
  using namespace quell;
  auto args = sandbox::ParseSandboxArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!args.ok()) {
    std::fprintf(stderr, "sandbox: error: %s\n%s", args.status().message().c_str(),
                 sandbox::kSandboxUsage);
    return kExitUsage;
  }
  if (args->help) {
    std::fputs(sandbox::kSandboxUsage, stdout);
    return 0;
  }
  auto sample = DescribeSample(args->options);
  if (!sample.ok()) {
    bool usage = sample.status().code() == StatusCode::kInvalidArgument ||
                 sample.status().code() == StatusCode::kNotFound;
    return Fail(usage ? kExitUsage : kExitFailed, sample.status().message());
  }
  auto observations = sandbox::RunSandbox(args->options, [](std::string_view stage) {
    std::fprintf(stderr, "sandbox: %.*s\n", static_cast<int>(stage.size()), stage.data());
  });
  if (!observations.ok()) {
    bool usage = observations.status().code() == StatusCode::kInvalidArgument;
    return Fail(usage ? kExitUsage : kExitFailed, observations.status().message());
  }
  nlohmann::json report = sandbox::BuildSandboxReport(*sample, *observations);
  if (Status s = WriteFileAtomic(args->report_path, report.dump(2) + "\n", 0600); !s.ok()) {
    return Fail(kExitFailed, "writing the report: " + s.message());
  }
  std::fprintf(stderr, "sandbox: done: verdict %s, %zu behaviors, startup %lld ms, report %s\n",
               report.value("verdict", std::string("?")).c_str(),
               report.contains("behaviors") ? report["behaviors"].size() : size_t{0},
               static_cast<long long>(observations->outcome.startup_ms), args->report_path.c_str());
  return 0;
}
