#include "agent/indicators/nft_runner.h"

#include <nftables/libnftables.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>

namespace quell::agent {

Result<std::unique_ptr<LibNftRunner>> LibNftRunner::Create() {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx == nullptr) return Internal("nft_ctx_new failed");
  if (nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0) {
    nft_ctx_free(ctx);
    return Internal("cannot buffer nft output");
  }
  return std::unique_ptr<LibNftRunner>(new LibNftRunner(ctx));
}

LibNftRunner::~LibNftRunner() { nft_ctx_free(ctx_); }

Result<std::string> LibNftRunner::Run(const std::string& script, bool json) {
  std::lock_guard lock(mutex_);
  nft_ctx_output_set_flags(ctx_, json ? NFT_CTX_OUTPUT_JSON : 0);
  // From a memfd rather than a buffer: nft 1.0.6 quotes the right line in errors only then.
  int fd = ::memfd_create("quell-nft-indicators", MFD_CLOEXEC);
  if (fd < 0) return ErrnoStatus("memfd_create");
  size_t written = 0;
  while (written < script.size()) {
    ssize_t n = ::write(fd, script.data() + written, script.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status failed = ErrnoStatus("write nft script");
      ::close(fd);
      return failed;
    }
    written += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const int rc = nft_run_cmd_from_filename(ctx_, path.c_str());
  ::close(fd);
  std::string output = nft_ctx_get_output_buffer(ctx_);
  std::string error = nft_ctx_get_error_buffer(ctx_);
  while (!error.empty() && std::isspace(static_cast<unsigned char>(error.back()))) error.pop_back();
  if (rc == 0) return output;
  if (error.empty()) error = "nft failed with rc=" + std::to_string(rc);
  if (error.find("Operation not permitted") != std::string::npos) return PermissionDenied("nft: " + error);
  return Internal("nft: " + error);
}

Result<std::string> FakeNftRunner::Run(const std::string& script, bool /*json*/) {
  std::lock_guard lock(mutex_);
  scripts_.push_back(script);
  if (replies_.empty()) return std::string();
  Result<std::string> r = std::move(replies_.front());
  replies_.erase(replies_.begin());
  return r;
}

void FakeNftRunner::QueueReply(Result<std::string> reply) {
  std::lock_guard lock(mutex_);
  replies_.push_back(std::move(reply));
}

std::vector<std::string> FakeNftRunner::Scripts() const {
  std::lock_guard lock(mutex_);
  return scripts_;
}

void FakeNftRunner::ClearScripts() {
  std::lock_guard lock(mutex_);
  scripts_.clear();
}

}  // namespace quell::agent
