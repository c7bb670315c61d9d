#include "agent/platform/nft_script.h"

#include <nftables/libnftables.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

namespace quell::agent {

Result<std::string> RunNftScript(nft_ctx* ctx, std::string_view script) {
  int fd = ::memfd_create("quell-nft", MFD_CLOEXEC);
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
  const int rc = nft_run_cmd_from_filename(ctx, path.c_str());
  ::close(fd);
  // Fetching a buffer also resets it for the next command.
  std::string output = nft_ctx_get_output_buffer(ctx);
  std::string error = nft_ctx_get_error_buffer(ctx);
  while (!error.empty() && std::isspace(static_cast<unsigned char>(error.back()))) error.pop_back();
  if (rc == 0) return output;
  if (error.empty()) error = "nft failed with rc=" + std::to_string(rc);
  if (error.find("Operation not permitted") != std::string::npos) {
    return PermissionDenied("nft: " + error);
  }
  return Internal("nft: " + error);
}

}  // namespace quell::agent
