// A compiled libclamav engine, loaded from database directories. Move-only; the C handle is
// freed exactly once. After Load() the engine is immutable and Scan() may be called from
// any number of threads at once (libclamav's contract for a compiled engine).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

struct cl_engine;

namespace quell::agent::scan {

struct ClamLimits {
  // Largest single file (or archive member) libclamav will look into, in bytes.
  uint64_t max_file_bytes = 100ull << 20;
  // Most bytes libclamav extracts and scans from one archive, in bytes.
  uint64_t archive_max_bytes = 400ull << 20;
  // Deepest archive nesting followed (a zip in a zip is 2).
  uint32_t archive_max_recursion = 17;
  uint32_t archive_max_files = 10'000;
};

struct ClamHit {
  std::string threat_name;    // e.g. "Quell.Test.UNOFFICIAL" (libclamav's name, unchanged)
  // Inside an archive: the member's file name as libclamav records it, nested archives joined
  // by "/" ("inner.zip/payload.exe"); empty for the file itself.
  std::string member_path;
};

class ClamEngine {
 public:
  ClamEngine() = default;
  ~ClamEngine();
  ClamEngine(ClamEngine&& other) noexcept;
  ClamEngine& operator=(ClamEngine&& other) noexcept;
  ClamEngine(const ClamEngine&) = delete;
  ClamEngine& operator=(const ClamEngine&) = delete;

  // Loads every database in each existing directory of `dirs` (missing ones are skipped and
  // named in `skipped_dirs`) and compiles the engine. A directory with broken databases is an
  // error (InvalidArgument naming it). Zero signatures is not an error: signature_count() == 0.
  static Result<ClamEngine> Load(const std::vector<std::string>& dirs, const ClamLimits& limits,
                                 std::vector<std::string>* skipped_dirs = nullptr);

  bool loaded() const { return engine_ != nullptr; }
  unsigned signature_count() const { return signatures_; }

  // Scans `len` bytes at `data` (the whole content of `name`). Returns the first detection,
  // like clamscan without --allmatch, or nullopt when clean; Internal on a scan error.
  // Archives are unpacked within the limits. Thread-safe.
  Result<std::optional<ClamHit>> Scan(const void* data, size_t len, const std::string& name) const;

 private:
  cl_engine* engine_ = nullptr;
  unsigned signatures_ = 0;
};

}  // namespace quell::agent::scan
