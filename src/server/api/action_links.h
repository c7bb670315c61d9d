// Signed download links to action artifacts, shared by the routes that hand them out
// (getPackageUri, GetLiveResponseResultDownloadLink, live response session downloads).
#pragma once

#include <string>

#include "server/api/api_context.h"

namespace quell::server {

// A fresh link to `artifact` of `action`, saved as `file_name` (link-safe characters only);
// audited as "action.link_issued" ("package.link_issued" for an investigation package) with
// the artifact's name. 200 {"value": url, "expirationDateTimeUtc", "sha256", "size"}.
// REQUIRES: api.download_links is not null.
http::Response IssueLink(ApiContext& api, const http::Request& request, const ApiToken& token,
                         const MachineAction& action, const ActionArtifact& artifact,
                         const std::string& file_name);

}  // namespace quell::server
