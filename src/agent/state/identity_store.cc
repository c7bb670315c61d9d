#include "agent/state/identity_store.h"

#include <unistd.h>

#include "common/files.h"

namespace quell::agent {

namespace {
constexpr const char* kDeviceIdFile = "device_id";
constexpr const char* kKeyFile = "device.key";
constexpr const char* kCertFile = "device.crt";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

Result<std::optional<Identity>> IdentityStore::Load() const {
  const std::string id_path = dir_ + "/" + kDeviceIdFile;
  if (::access(id_path.c_str(), F_OK) != 0) return std::optional<Identity>();
  Identity identity;
  QUELL_ASSIGN_OR_RETURN(std::string id, ReadFile(id_path));
  identity.device_id = Trim(std::move(id));
  QUELL_ASSIGN_OR_RETURN(identity.key_pem, ReadFile(dir_ + "/" + kKeyFile));
  QUELL_ASSIGN_OR_RETURN(identity.cert_pem, ReadFile(dir_ + "/" + kCertFile));
  if (identity.device_id.empty() || identity.key_pem.empty() || identity.cert_pem.empty()) {
    return Internal("identity in " + dir_ + " is incomplete; remove it to enroll again");
  }
  return std::optional<Identity>(std::move(identity));
}

Status IdentityStore::Save(const Identity& identity) const {
  if (identity.device_id.empty() || identity.key_pem.empty() || identity.cert_pem.empty()) {
    return InvalidArgument("identity is incomplete");
  }
  QUELL_RETURN_IF_ERROR(MakeDirs(dir_, 0700));
  QUELL_RETURN_IF_ERROR(WriteFileAtomic(dir_ + "/" + kKeyFile, identity.key_pem, 0600));
  QUELL_RETURN_IF_ERROR(WriteFileAtomic(dir_ + "/" + kCertFile, identity.cert_pem, 0600));
  return WriteFileAtomic(dir_ + "/" + kDeviceIdFile, identity.device_id + "\n", 0600);
}

}  // namespace quell::agent
