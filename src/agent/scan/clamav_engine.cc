#include "agent/scan/clamav_engine.h"

#include <clamav.h>
#include <sys/stat.h>

#include <mutex>
#include <utility>

namespace quell::agent::scan {
namespace {

Status InitOnce() {
  static std::once_flag once;
  static cl_error_t rc = CL_SUCCESS;
  std::call_once(once, [] { rc = cl_init(CL_INIT_DEFAULT); });
  if (rc != CL_SUCCESS) return Internal(std::string("cl_init: ") + cl_strerror(rc));
  return Status::Ok();
}

// Per-scan state handed to libclamav's callbacks: the names of the layers being inspected,
// so a detection inside an archive can say which member it was. With first-match scanning
// the scan stops at the first detection, so the stack is exact at that moment.
struct ScanContext {
  std::vector<std::string> layers;  // index = recursion level; [0] is the file itself
  std::string member_at_detection;
  bool detected = false;
};

cl_error_t OnInspect(int, const char*, const char**, size_t, const char* file_name, size_t,
                     const char*, uint32_t recursion_level, uint32_t, void* context) {
  auto* ctx = static_cast<ScanContext*>(context);
  if (ctx == nullptr) return CL_CLEAN;
  ctx->layers.resize(recursion_level + 1);
  ctx->layers[recursion_level] = file_name != nullptr ? file_name : "";
  return CL_CLEAN;
}

void OnVirus(int, const char*, void* context) {
  auto* ctx = static_cast<ScanContext*>(context);
  if (ctx == nullptr || ctx->detected) return;
  ctx->detected = true;
  std::string member;
  for (size_t i = 1; i < ctx->layers.size(); ++i) {
    const std::string& name = ctx->layers[i];
    if (name.empty()) continue;  // a layer without a name (e.g. a decompressed stream)
    if (!member.empty()) member += '/';
    member += name;
  }
  ctx->member_at_detection = member;
}

}  // namespace

ClamEngine::~ClamEngine() {
  if (engine_ != nullptr) cl_engine_free(engine_);
}

ClamEngine::ClamEngine(ClamEngine&& other) noexcept
    : engine_(std::exchange(other.engine_, nullptr)), signatures_(other.signatures_) {}

ClamEngine& ClamEngine::operator=(ClamEngine&& other) noexcept {
  if (this != &other) {
    if (engine_ != nullptr) cl_engine_free(engine_);
    engine_ = std::exchange(other.engine_, nullptr);
    signatures_ = other.signatures_;
  }
  return *this;
}

Result<ClamEngine> ClamEngine::Load(const std::vector<std::string>& dirs,
                                    const ClamLimits& limits,
                                    std::vector<std::string>* skipped_dirs) {
  QUELL_RETURN_IF_ERROR(InitOnce());
  ClamEngine out;
  out.engine_ = cl_engine_new();
  if (out.engine_ == nullptr) return Internal("cl_engine_new failed");
  for (const std::string& dir : dirs) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      if (skipped_dirs != nullptr) skipped_dirs->push_back(dir);
      continue;
    }
    unsigned count = 0;
    cl_error_t rc = cl_load(dir.c_str(), out.engine_, &count, CL_DB_STDOPT);
    // An empty directory is fine; libclamav reports it as CL_EOPEN on some versions.
    if (rc != CL_SUCCESS && !(rc == CL_EOPEN && count == 0)) {
      return InvalidArgument("ClamAV database dir " + dir + ": " + cl_strerror(rc));
    }
    out.signatures_ += count;
  }
  cl_engine_set_num(out.engine_, CL_ENGINE_MAX_FILESIZE,
                    static_cast<long long>(limits.max_file_bytes));
  cl_engine_set_num(out.engine_, CL_ENGINE_MAX_SCANSIZE,
                    static_cast<long long>(limits.archive_max_bytes));
  cl_engine_set_num(out.engine_, CL_ENGINE_MAX_RECURSION, limits.archive_max_recursion);
  cl_engine_set_num(out.engine_, CL_ENGINE_MAX_FILES, limits.archive_max_files);
  cl_engine_set_clcb_file_inspection(out.engine_, &OnInspect);
  cl_engine_set_clcb_virus_found(out.engine_, &OnVirus);
  if (cl_error_t rc = cl_engine_compile(out.engine_); rc != CL_SUCCESS) {
    return Internal(std::string("cl_engine_compile: ") + cl_strerror(rc));
  }
  return out;
}

Result<std::optional<ClamHit>> ClamEngine::Scan(const void* data, size_t len,
                                                const std::string& name) const {
  if (engine_ == nullptr) return FailedPrecondition("ClamAV engine not loaded");
  cl_fmap_t* map = cl_fmap_open_memory(data, len);
  if (map == nullptr) return Internal("cl_fmap_open_memory failed for " + name);
  // The options clamscan uses by default: every parser, heuristics on, no extra alerts.
  struct cl_scan_options options {};
  options.general = CL_SCAN_GENERAL_HEURISTICS;
  options.parse = ~0u;
  ScanContext ctx;
  const char* virname = nullptr;
  unsigned long scanned = 0;
  cl_error_t rc = cl_scanmap_callback(map, name.c_str(), &virname, &scanned, engine_, &options,
                                      &ctx);
  cl_fmap_close(map);
  if (rc == CL_CLEAN) return std::optional<ClamHit>();
  if (rc == CL_VIRUS) {
    return std::optional<ClamHit>(ClamHit{
        .threat_name = virname != nullptr ? virname : "unknown",
        .member_path = ctx.member_at_detection,
    });
  }
  return Internal("clamav " + name + ": " + cl_strerror(rc));
}

}  // namespace quell::agent::scan
