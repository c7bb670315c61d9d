// NftRunner: runs nft scripts (one transaction each) in the network namespace of the thread
// that created it. The narrow interface the IP indicator enforcement needs beyond Firewall's
// whole-table replace: element-level set updates and JSON listings with counters.
// Implementations are thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

struct nft_ctx;

namespace quell::agent {

class NftRunner {
 public:
  virtual ~NftRunner() = default;
  // Runs `script` as one transaction; returns nft's output (JSON when `json`), or an error
  // with nft's own message (PermissionDenied when not allowed).
  virtual Result<std::string> Run(const std::string& script, bool json) = 0;
};

// libnftables.
class LibNftRunner final : public NftRunner {
 public:
  static Result<std::unique_ptr<LibNftRunner>> Create();
  ~LibNftRunner() override;
  Result<std::string> Run(const std::string& script, bool json) override;

 private:
  explicit LibNftRunner(nft_ctx* ctx) : ctx_(ctx) {}
  std::mutex mutex_;
  nft_ctx* ctx_;
};

// Records scripts and answers from a script of replies; for unit tests.
class FakeNftRunner final : public NftRunner {
 public:
  Result<std::string> Run(const std::string& script, bool json) override;
  // The next Run calls return these, in order (then "" for the rest).
  void QueueReply(Result<std::string> reply);
  std::vector<std::string> Scripts() const;
  void ClearScripts();

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> scripts_;
  std::vector<Result<std::string>> replies_;
};

}  // namespace quell::agent
