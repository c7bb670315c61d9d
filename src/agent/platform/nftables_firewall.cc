#include "agent/platform/nftables_firewall.h"

#include <nftables/libnftables.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "agent/platform/nft_script.h"

namespace quell::agent {
namespace {

// Family and name are spliced into nft commands, so only plain identifiers pass.
Status CheckTableId(const std::string& family, const std::string& name) {
  static constexpr std::array<std::string_view, 6> kFamilies = {"ip",  "ip6",    "inet",
                                                                "arp", "bridge", "netdev"};
  if (std::find(kFamilies.begin(), kFamilies.end(), family) == kFamilies.end()) {
    return InvalidArgument("unknown nftables family '" + family + "'");
  }
  bool valid = !name.empty() && name.size() <= 64 && std::isalpha(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  }
  if (!valid) return InvalidArgument("invalid nftables table name '" + name + "'");
  return Status::Ok();
}

}  // namespace

void NftablesFirewall::ContextDeleter::operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }

Result<std::unique_ptr<NftablesFirewall>> NftablesFirewall::Create() {
  Context ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return Internal("nft_ctx_new failed");
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
    return Internal("cannot buffer nft output");
  }
  // Stateless listings leave out counters and quotas, so a re-read of an untouched table is
  // byte-identical (ReadTable's contract).
  nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_STATELESS);
  return std::unique_ptr<NftablesFirewall>(new NftablesFirewall(std::move(ctx)));
}

Result<std::string> NftablesFirewall::Run(const std::string& commands) {
  return RunNftScript(ctx_.get(), commands);
}

Status NftablesFirewall::ReplaceTable(const std::string& family, const std::string& name,
                                      const std::string& ruleset) {
  QUELL_RETURN_IF_ERROR(CheckTableId(family, name));
  const std::string table = "table " + family + " " + name;
  // "add" makes "delete" safe when the table is absent; one buffer is one transaction, so
  // no packet ever sees the host without the table, or with half of it.
  std::lock_guard lock(mutex_);
  return Run("add " + table + "\ndelete " + table + "\n" + ruleset + "\n").status();
}

Status NftablesFirewall::DeleteTable(const std::string& family, const std::string& name) {
  QUELL_RETURN_IF_ERROR(CheckTableId(family, name));
  const std::string table = "table " + family + " " + name;
  std::lock_guard lock(mutex_);
  return Run("add " + table + "\ndelete " + table + "\n").status();
}

Result<std::optional<std::string>> NftablesFirewall::ReadTable(const std::string& family,
                                                               const std::string& name) {
  QUELL_RETURN_IF_ERROR(CheckTableId(family, name));
  std::lock_guard lock(mutex_);
  Result<std::string> listing = Run("list table " + family + " " + name);
  if (listing.ok()) return std::optional<std::string>(std::move(listing).value());
  // Tell "absent" from a real failure without parsing nft's error wording.
  QUELL_ASSIGN_OR_RETURN(std::string tables, Run("list tables " + family));
  if (tables.find("table " + family + " " + name + "\n") == std::string::npos) {
    return std::optional<std::string>();
  }
  return listing.status();
}

}  // namespace quell::agent
