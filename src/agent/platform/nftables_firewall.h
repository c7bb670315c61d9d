// NftablesFirewall: Firewall over libnftables, acting on the network namespace of the thread
// that calls Create() (the netlink socket is bound to it for the object's lifetime).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "agent/platform/firewall.h"

struct nft_ctx;

namespace quell::agent {

class NftablesFirewall final : public Firewall {
 public:
  // Internal if libnftables cannot create a context.
  static Result<std::unique_ptr<NftablesFirewall>> Create();

  Status ReplaceTable(const std::string& family, const std::string& name,
                      const std::string& ruleset) override;
  Status DeleteTable(const std::string& family, const std::string& name) override;
  Result<std::optional<std::string>> ReadTable(const std::string& family,
                                               const std::string& name) override;

 private:
  struct ContextDeleter {
    void operator()(nft_ctx* ctx) const;
  };
  using Context = std::unique_ptr<nft_ctx, ContextDeleter>;

  explicit NftablesFirewall(Context ctx) : ctx_(std::move(ctx)) {}

  // Runs `commands` (an nft script) as one transaction; returns nft's output, or its error text.
  // REQUIRES: mutex_ held.
  Result<std::string> Run(const std::string& commands);

  std::mutex mutex_;  // an nft_ctx is not thread-safe
  Context ctx_;
};

}  // namespace quell::agent
