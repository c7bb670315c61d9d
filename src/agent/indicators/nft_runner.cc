#include "agent/indicators/nft_runner.h"

#include <nftables/libnftables.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>

#include "agent/platform/nft_script.h"

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
  return RunNftScript(ctx_, script);
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
