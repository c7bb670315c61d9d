// ZipWriter: writes a zip archive from files on disk (libzip), optionally AES-256 encrypted.
//
// Entries are added by name and read from their source files only when the archive is
// written by Close(), one at a time and streamed, so an archive of gigabytes needs no more
// memory than libzip's buffers. The archive appears at its path only when Close() succeeds
// (libzip writes a temporary file beside it and renames it); a writer destroyed without
// Close() leaves nothing. Archives with a password use WinZip AES-256, which 7-Zip opens.
//
// Thread-safety: none; one writer per archive.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

struct zip;

namespace quell {

struct ZipOptions {
  std::string password;  // empty: not encrypted; otherwise every entry is AES-256 encrypted
};

class ZipWriter {
 public:
  // Starts a new archive at `path` (replacing one already there once Close() succeeds).
  static Result<ZipWriter> Create(const std::string& path, ZipOptions options = {});
  ZipWriter(ZipWriter&&) noexcept;
  ZipWriter& operator=(ZipWriter&&) noexcept;
  ~ZipWriter();

  // Adds the file at `source_path` as entry `name` (a relative path with '/' separators).
  // The file is read at Close(); it must stay in place until then.
  Status AddFile(std::string_view name, const std::string& source_path);
  // Adds every regular file under `dir`, named by its path relative to `dir`, in sorted order.
  Status AddTree(const std::string& dir, std::string_view prefix = "");

  // Writes the archive. `progress` (0.0..1.0) is called as entries are written.
  Status Close(const std::function<void(double)>& progress = {});

 private:
  ZipWriter(zip* archive, ZipOptions options);
  void Discard();

  zip* archive_ = nullptr;
  ZipOptions options_;
  std::unique_ptr<std::function<void(double)>> progress_;  // stable address for libzip
};

}  // namespace quell
