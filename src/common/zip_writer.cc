#include "common/zip_writer.h"

#include <zip.h>

#include <algorithm>
#include <filesystem>
#include <vector>

namespace quell {
namespace {

namespace fs = std::filesystem;

std::string ArchiveError(zip_t* archive) { return zip_strerror(archive); }

bool ValidEntryName(std::string_view name) {
  if (name.empty() || name.front() == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    std::string_view part = name.substr(start, slash == std::string_view::npos ? name.npos
                                                                               : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

}  // namespace

ZipWriter::ZipWriter(zip* archive, ZipOptions options)
    : archive_(archive), options_(std::move(options)) {}

ZipWriter::ZipWriter(ZipWriter&& other) noexcept
    : archive_(std::exchange(other.archive_, nullptr)),
      options_(std::move(other.options_)),
      progress_(std::move(other.progress_)) {}

ZipWriter& ZipWriter::operator=(ZipWriter&& other) noexcept {
  if (this != &other) {
    Discard();
    archive_ = std::exchange(other.archive_, nullptr);
    options_ = std::move(other.options_);
    progress_ = std::move(other.progress_);
  }
  return *this;
}

ZipWriter::~ZipWriter() { Discard(); }

void ZipWriter::Discard() {
  if (archive_ != nullptr) zip_discard(archive_);
  archive_ = nullptr;
}

Result<ZipWriter> ZipWriter::Create(const std::string& path, ZipOptions options) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (archive == nullptr) {
    zip_error_t e;
    zip_error_init_with_code(&e, error);
    std::string message = zip_error_strerror(&e);
    zip_error_fini(&e);
    return Internal("cannot create " + path + ": " + message);
  }
  return ZipWriter(archive, std::move(options));
}

Status ZipWriter::AddFile(std::string_view name, const std::string& source_path) {
  if (archive_ == nullptr) return FailedPrecondition("the archive is closed");
  if (!ValidEntryName(name)) return InvalidArgument("bad zip entry name '" + std::string(name) + "'");
  zip_source_t* source = zip_source_file(archive_, source_path.c_str(), 0, -1);
  if (source == nullptr) {
    return Internal("cannot read " + source_path + ": " + ArchiveError(archive_));
  }
  const std::string entry(name);
  zip_int64_t index = zip_file_add(archive_, entry.c_str(), source, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
  if (index < 0) {
    zip_source_free(source);
    return Internal("cannot add " + entry + ": " + ArchiveError(archive_));
  }
  const auto i = static_cast<zip_uint64_t>(index);
  if (!options_.password.empty() &&
      zip_file_set_encryption(archive_, i, ZIP_EM_AES_256, options_.password.c_str()) != 0) {
    return Internal("cannot encrypt " + entry + ": " + ArchiveError(archive_));
  }
  return Status::Ok();
}

Status ZipWriter::AddTree(const std::string& dir, std::string_view prefix) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path());
  }
  if (ec) return Internal("cannot list " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    std::string name = fs::relative(f, dir).generic_string();
    if (!prefix.empty()) name = std::string(prefix) + "/" + name;
    QUELL_RETURN_IF_ERROR(AddFile(name, f.string()));
  }
  return Status::Ok();
}

Status ZipWriter::Close(const std::function<void(double)>& progress) {
  if (archive_ == nullptr) return FailedPrecondition("the archive is closed");
  if (progress) {
    progress_ = std::make_unique<std::function<void(double)>>(progress);
    zip_register_progress_callback_with_state(
        archive_, 0.01,
        [](zip_t*, double done, void* state) {
          (*static_cast<std::function<void(double)>*>(state))(done);
        },
        nullptr, progress_.get());
  }
  if (zip_close(archive_) != 0) {
    Status status = Internal("cannot write the archive: " + ArchiveError(archive_));
    Discard();
    return status;
  }
  archive_ = nullptr;
  return Status::Ok();
}

}  // namespace quell
