#include "server/auth/api_tokens.h"

#include <nlohmann/json.hpp>

#include "common/hash.h"
#include "common/ids.h"

namespace quell::server {

Result<CreatedApiToken> CreateApiToken(Store& store, const Clock& clock, const std::string& name,
                                       Role role) {
  if (name.empty() || name.size() > 128) {
    return InvalidArgument("a token name must have 1 to 128 characters");
  }
  CreatedApiToken created;
  created.secret = "qk_" + RandomHex(32);
  created.token = {.id = NewUuid(),
                   .name = name,
                   .role = role,
                   .secret_sha256 = Sha256Hex(created.secret),
                   .created = clock.Now(),
                   .revoked = false};
  QUELL_RETURN_IF_ERROR(store.CreateApiToken(created.token));
  QUELL_RETURN_IF_ERROR(store.AppendAudit(
      {.time = created.token.created,
       .actor = "system",
       .operation = "token.created",
       .target = created.token.id,
       .comment = name,
       .details_json = nlohmann::json{{"role", RoleName(role)}}.dump()}));
  return created;
}

Result<ApiToken> AuthenticateBearer(Store& store, std::string_view header) {
  constexpr std::string_view kScheme = "Bearer ";
  if (header.empty()) return Unauthenticated("missing Authorization header (Bearer token)");
  if (header.size() <= kScheme.size() || header.substr(0, kScheme.size()) != kScheme) {
    return Unauthenticated("the Authorization header must be 'Bearer <token>'");
  }
  std::string_view secret = header.substr(kScheme.size());
  Result<ApiToken> token = store.FindApiTokenBySecretHash(Sha256Hex(secret));
  if (!token.ok()) {
    if (token.status().code() == StatusCode::kNotFound) {
      return Unauthenticated("invalid or revoked token");
    }
    return token.status();
  }
  if (token->revoked) return Unauthenticated("invalid or revoked token");
  return token;
}

bool RoleAllows(Role have, Role need) {
  return static_cast<int>(have) >= static_cast<int>(need);
}

}  // namespace quell::server
