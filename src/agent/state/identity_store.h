// The device identity the agent receives at enrollment, kept in <state_dir>/identity/:
//   device_id    the id the server assigned (also the certificate's CN)
//   device.key   PEM private key (PKCS#8), mode 0600
//   device.crt   PEM client certificate issued by the server's CA
// Every file is written atomically; device_id is written last, so its presence means the
// identity is complete (a crash mid-save leaves the agent "not enrolled", never half-enrolled).
#pragma once

#include <optional>
#include <string>

#include "common/status.h"

namespace quell::agent {

struct Identity {
  std::string device_id;
  std::string key_pem;
  std::string cert_pem;
};

class IdentityStore {
 public:
  // `dir` is <state_dir>/identity; it is created (0700) on Save.
  explicit IdentityStore(std::string dir) : dir_(std::move(dir)) {}

  // nullopt if the agent has not enrolled yet; an error if the files exist but are unreadable.
  Result<std::optional<Identity>> Load() const;

  // REQUIRES: every field is non-empty.
  Status Save(const Identity& identity) const;

 private:
  std::string dir_;
};

}  // namespace quell::agent
