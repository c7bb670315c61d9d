// API tokens: bearer secrets with a role. Only the SHA-256 of a secret is stored; the secret
// itself is shown once, when the token is created.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "server/store/store.h"

namespace quell::server {

struct CreatedApiToken {
  ApiToken token;      // as stored
  std::string secret;  // "qk_<64 hex>"; give it to the user, it is not kept
};

Result<CreatedApiToken> CreateApiToken(Store& store, const Clock& clock, const std::string& name,
                                       Role role);

// The token for an "Authorization: Bearer <secret>" header value. Unauthenticated with a
// message fit for the client when the header is missing, malformed, unknown or revoked.
Result<ApiToken> AuthenticateBearer(Store& store, std::string_view authorization_header);

// True when `have` includes the rights of `need` (admin > responder > viewer).
bool RoleAllows(Role have, Role need);

}  // namespace quell::server
