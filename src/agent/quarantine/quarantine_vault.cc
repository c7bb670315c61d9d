#include "agent/quarantine/quarantine_vault.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/files.h"
#include "common/hash.h"
#include "common/ids.h"

namespace quell::agent::quarantine {
namespace {

constexpr char kMagic[8] = {'Q', 'U', 'E', 'L', 'L', 'Q', 'V', '1'};
constexpr size_t kIvBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kKeyBytes = 32;
constexpr size_t kChunk = 64 * 1024;

int64_t Ns(const struct timespec& ts) { return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec; }
struct timespec Ts(int64_t ns) {
  struct timespec ts {};
  ts.tv_sec = ns / 1'000'000'000LL;
  ts.tv_nsec = ns % 1'000'000'000LL;
  return ts;
}

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 15]);
  }
  return out;
}

// Move-only owner of a file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// SHA-256, SHA-1 and MD5 in one pass.
class Digests {
 public:
  Digests() {
    for (auto& c : ctx_) c.reset(EVP_MD_CTX_new());
    EVP_DigestInit_ex(ctx_[0].get(), EVP_sha256(), nullptr);
    EVP_DigestInit_ex(ctx_[1].get(), EVP_sha1(), nullptr);
    EVP_DigestInit_ex(ctx_[2].get(), EVP_md5(), nullptr);
  }
  void Update(const void* p, size_t n) {
    for (auto& c : ctx_) EVP_DigestUpdate(c.get(), p, n);
  }
  void Final(std::string& sha256, std::string& sha1, std::string& md5) {
    std::string* outs[3] = {&sha256, &sha1, &md5};
    for (int i = 0; i < 3; ++i) {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      EVP_DigestFinal_ex(ctx_[i].get(), md, &len);
      *outs[i] = Hex(md, len);
    }
  }

 private:
  MdCtx ctx_[3];
};

Status WriteAll(int fd, const void* data, size_t size, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(fd, p + off, size - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + what);
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Reads up to `size` bytes; fewer only at end of file.
Result<size_t> ReadFull(int fd, void* data, size_t size, const std::string& what) {
  char* p = static_cast<char*>(data);
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::read(fd, p + off, size - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + what);
    }
    if (n == 0) break;
    off += static_cast<size_t>(n);
  }
  return off;
}

void SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

nlohmann::json ItemToJson(const VaultItem& it) {
  nlohmann::json j = {
      {"id", it.id},          {"path", BytesToJson(it.path)}, {"uid", it.uid},
      {"gid", it.gid},        {"mode", it.mode},               {"atimeNs", it.atime_ns},
      {"mtimeNs", it.mtime_ns}, {"size", it.size},            {"sha256", it.sha256},
      {"sha1", it.sha1},      {"md5", it.md5},                 {"xattrs", XattrsToJson(it.xattrs)},
      {"dev", it.dev},        {"ino", it.ino},                 {"ctimeNs", it.ctime_ns},
      {"keyId", it.key_id},
  };
  if (it.parent.has_value()) {
    j["parentAtimeNs"] = it.parent->atime_ns;
    j["parentMtimeNs"] = it.parent->mtime_ns;
  }
  return j;
}

Result<VaultItem> ItemFromJson(const nlohmann::json& j) {
  try {
    VaultItem it;
    it.id = j.at("id").get<std::string>();
    QUELL_ASSIGN_OR_RETURN(it.path, BytesFromJson(j.at("path")));
    it.uid = j.at("uid").get<uint32_t>();
    it.gid = j.at("gid").get<uint32_t>();
    it.mode = j.at("mode").get<uint32_t>();
    it.atime_ns = j.at("atimeNs").get<int64_t>();
    it.mtime_ns = j.at("mtimeNs").get<int64_t>();
    it.size = j.at("size").get<uint64_t>();
    it.sha256 = j.at("sha256").get<std::string>();
    it.sha1 = j.at("sha1").get<std::string>();
    it.md5 = j.at("md5").get<std::string>();
    QUELL_ASSIGN_OR_RETURN(it.xattrs, XattrsFromJson(j.at("xattrs")));
    it.dev = j.at("dev").get<uint64_t>();
    it.ino = j.at("ino").get<uint64_t>();
    it.ctime_ns = j.at("ctimeNs").get<int64_t>();
    it.key_id = j.at("keyId").get<std::string>();
    if (j.contains("parentMtimeNs")) {
      it.parent = DirTimes{j.at("parentAtimeNs").get<int64_t>(), j.at("parentMtimeNs").get<int64_t>()};
    }
    return it;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("malformed vault metadata: ") + e.what());
  }
}

}  // namespace

Result<FileHashes> HashFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.ok()) return ErrnoStatus("open " + path);
  Result<FileHashes> hashes = quell::HashFd(fd.get());
  if (!hashes.ok()) return hashes.status().WithContext(path);
  return hashes;
}

bool IsSafeId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Result<std::unique_ptr<QuarantineVault>> QuarantineVault::Open(const std::string& dir) {
  QUELL_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  ::chmod(dir.c_str(), 0700);
  const std::string key_path = dir + "/vault.key";
  std::string key;
  Fd created(::open(key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (created.ok()) {
    key.resize(kKeyBytes);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeyBytes) != 1) {
      ::unlink(key_path.c_str());
      return Internal("RAND_bytes failed creating the vault key");
    }
    if (Status s = WriteAll(created.get(), key.data(), key.size(), key_path); !s.ok()) {
      ::unlink(key_path.c_str());
      return s;
    }
    if (::fsync(created.get()) != 0) return ErrnoStatus("fsync " + key_path);
    SyncDir(dir);
  } else if (errno == EEXIST) {
    QUELL_ASSIGN_OR_RETURN(key, ReadFile(key_path));
    if (key.size() != kKeyBytes) {
      return FailedPrecondition("vault key " + key_path + " has " + std::to_string(key.size()) +
                                " bytes, expected 32; refusing to use or replace it");
    }
  } else {
    return ErrnoStatus("create " + key_path);
  }
  std::string key_id = Sha256Hex("quell-vault-key-id:" + key).substr(0, 16);
  return std::unique_ptr<QuarantineVault>(new QuarantineVault(dir, std::move(key), std::move(key_id)));
}

Result<VaultItem> QuarantineVault::Store(const std::string& path, const std::string& id) {
  if (!IsSafeId(id)) return InvalidArgument("vault id '" + id + "' is not a safe file name");
  if (auto existing = Find(id); existing.ok()) return existing;

  Fd in(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME | O_NONBLOCK));
  if (!in.ok() && errno == EPERM) in = Fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!in.ok()) return ErrnoStatus("open " + path);
  struct stat before {};
  if (::fstat(in.get(), &before) != 0) return ErrnoStatus("fstat " + path);
  if (!S_ISREG(before.st_mode)) return FailedPrecondition(path + " is not a regular file");
  QUELL_ASSIGN_OR_RETURN(Xattrs xattrs, ReadXattrs(in.get()));

  unsigned char iv[kIvBytes];
  if (RAND_bytes(iv, sizeof iv) != 1) return Internal("RAND_bytes failed");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                                 reinterpret_cast<const unsigned char*>(key_.data()), iv) != 1) {
    return Internal("cannot initialise AES-256-GCM");
  }
  int outl = 0;
  if (EVP_EncryptUpdate(ctx.get(), nullptr, &outl, reinterpret_cast<const unsigned char*>(id.data()),
                        static_cast<int>(id.size())) != 1) {
    return Internal("AES-GCM AAD failed");
  }

  const std::string tmp = BlobPath(id) + ".tmp";
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out.ok()) return ErrnoStatus("create " + tmp);
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    return s;
  };
  if (Status s = WriteAll(out.get(), kMagic, sizeof kMagic, tmp); !s.ok()) return fail(s);
  if (Status s = WriteAll(out.get(), iv, sizeof iv, tmp); !s.ok()) return fail(s);

  Digests digests;
  std::vector<unsigned char> buf(kChunk), enc(kChunk + 32);
  uint64_t size = 0;
  while (true) {
    auto n = ReadFull(in.get(), buf.data(), buf.size(), path);
    if (!n.ok()) return fail(n.status());
    if (*n == 0) break;
    digests.Update(buf.data(), *n);
    size += *n;
    if (EVP_EncryptUpdate(ctx.get(), enc.data(), &outl, buf.data(), static_cast<int>(*n)) != 1) {
      return fail(Internal("AES-GCM encryption failed"));
    }
    if (Status s = WriteAll(out.get(), enc.data(), static_cast<size_t>(outl), tmp); !s.ok()) return fail(s);
  }
  if (EVP_EncryptFinal_ex(ctx.get(), enc.data(), &outl) != 1) return fail(Internal("AES-GCM final failed"));
  unsigned char tag[kTagBytes];
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag) != 1) {
    return fail(Internal("AES-GCM tag failed"));
  }
  if (Status s = WriteAll(out.get(), tag, sizeof tag, tmp); !s.ok()) return fail(s);
  if (::fsync(out.get()) != 0) return fail(ErrnoStatus("fsync " + tmp));

  struct stat after {};
  if (::fstat(in.get(), &after) != 0) return fail(ErrnoStatus("fstat " + path));
  if (after.st_size != before.st_size || Ns(after.st_mtim) != Ns(before.st_mtim) ||
      Ns(after.st_ctim) != Ns(before.st_ctim) || size != static_cast<uint64_t>(before.st_size)) {
    return fail(FailedPrecondition(path + " changed while it was being copied into the vault"));
  }
  if (::rename(tmp.c_str(), BlobPath(id).c_str()) != 0) return fail(ErrnoStatus("rename " + tmp));

  VaultItem item;
  item.id = id;
  item.path = path;
  item.uid = before.st_uid;
  item.gid = before.st_gid;
  item.mode = before.st_mode & 07777;
  item.atime_ns = Ns(before.st_atim);
  item.mtime_ns = Ns(before.st_mtim);
  item.size = size;
  digests.Final(item.sha256, item.sha1, item.md5);
  item.xattrs = std::move(xattrs);
  item.parent = ReadDirTimes(ParentDir(path));
  item.dev = before.st_dev;
  item.ino = before.st_ino;
  item.ctime_ns = Ns(before.st_ctim);
  item.key_id = key_id_;
  QUELL_RETURN_IF_ERROR(WriteFileAtomic(MetaPath(id), ItemToJson(item).dump(2), 0600));
  SyncDir(dir_);
  return item;
}

Result<VaultItem> QuarantineVault::Find(const std::string& id) const {
  if (!IsSafeId(id)) return InvalidArgument("vault id '" + id + "' is not a safe file name");
  struct stat st {};
  if (::stat(MetaPath(id).c_str(), &st) != 0) return NotFound("no vault item " + id);
  QUELL_ASSIGN_OR_RETURN(std::string text, ReadFile(MetaPath(id)));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return FailedPrecondition("vault metadata " + MetaPath(id) + " is not JSON");
  return ItemFromJson(j);
}

std::vector<VaultItem> QuarantineVault::List() const {
  std::vector<VaultItem> out;
  auto names = ListFiles(dir_);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (!name.ends_with(".json")) continue;
    if (auto it = Find(name.substr(0, name.size() - 5)); it.ok()) out.push_back(std::move(*it));
  }
  return out;
}

Status QuarantineVault::Restore(const std::string& id) {
  QUELL_ASSIGN_OR_RETURN(VaultItem item, Find(id));
  struct stat st {};
  if (::lstat(item.path.c_str(), &st) == 0) {
    if (S_ISREG(st.st_mode)) {
      auto hashes = HashFile(item.path);
      if (hashes.ok() && hashes->sha256 == item.sha256) return Status::Ok();  // already back
    }
    return AlreadyExists("a different file now exists at " + item.path +
                         "; it was not overwritten (move it away, then restore again)");
  }
  if (item.key_id != key_id_) {
    return FailedPrecondition("vault item " + id + " was encrypted with another vault key (key id " +
                              item.key_id + ", this agent's is " + key_id_ + ")");
  }
  Fd in(::open(BlobPath(id).c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.ok()) return ErrnoStatus("open " + BlobPath(id));
  char magic[sizeof kMagic];
  unsigned char iv[kIvBytes];
  QUELL_ASSIGN_OR_RETURN(size_t got, ReadFull(in.get(), magic, sizeof magic, BlobPath(id)));
  if (got != sizeof magic || std::string_view(magic, got) != std::string_view(kMagic, sizeof kMagic)) {
    return FailedPrecondition("vault item " + id + " is not a quarantine blob (bad header)");
  }
  QUELL_ASSIGN_OR_RETURN(got, ReadFull(in.get(), iv, sizeof iv, BlobPath(id)));
  if (got != sizeof iv) return FailedPrecondition("vault item " + id + " is truncated");

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int outl = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                                 reinterpret_cast<const unsigned char*>(key_.data()), iv) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &outl, reinterpret_cast<const unsigned char*>(id.data()),
                        static_cast<int>(id.size())) != 1) {
    return Internal("cannot initialise AES-256-GCM");
  }

  const std::string dir = ParentDir(item.path);
  QUELL_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  const std::string tmp = dir + "/.quell-restore-" + RandomHex(8) + ".tmp";
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!out.ok()) return ErrnoStatus("create " + tmp);
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    return s;
  };

  // Stream: hold back the last 16 bytes read, which may be the tag.
  Digests digests;
  std::vector<unsigned char> buf(kChunk + kTagBytes), dec(kChunk + kTagBytes + 32);
  size_t held = 0;  // bytes at the start of buf not yet decrypted
  uint64_t plain = 0;
  while (true) {
    auto n = ReadFull(in.get(), buf.data() + held, kChunk, BlobPath(id));
    if (!n.ok()) return fail(n.status());
    held += *n;
    if (held > kTagBytes) {
      const size_t take = held - kTagBytes;
      if (EVP_DecryptUpdate(ctx.get(), dec.data(), &outl, buf.data(), static_cast<int>(take)) != 1) {
        return fail(Internal("AES-GCM decryption failed"));
      }
      digests.Update(dec.data(), static_cast<size_t>(outl));
      plain += static_cast<uint64_t>(outl);
      if (Status s = WriteAll(out.get(), dec.data(), static_cast<size_t>(outl), tmp); !s.ok()) return fail(s);
      std::memmove(buf.data(), buf.data() + take, kTagBytes);
      held = kTagBytes;
    }
    if (*n == 0) break;
  }
  if (held != kTagBytes) return fail(FailedPrecondition("vault item " + id + " is truncated"));
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, buf.data()) != 1) {
    return fail(Internal("AES-GCM set tag failed"));
  }
  if (EVP_DecryptFinal_ex(ctx.get(), dec.data(), &outl) != 1) {
    return fail(FailedPrecondition("vault item " + id +
                                   " failed authentication: the blob was modified or truncated, or "
                                   "the vault key is not the one it was encrypted with"));
  }
  std::string sha256, sha1, md5;
  digests.Final(sha256, sha1, md5);
  if (sha256 != item.sha256 || plain != item.size) {
    return fail(FailedPrecondition("vault item " + id + " decrypted to content whose SHA-256 " +
                                   sha256 + " differs from the recorded " + item.sha256));
  }
  // Owner before mode (chown clears setuid bits); xattrs after both (chown drops
  // security.capability); times last.
  if (::fchown(out.get(), item.uid, item.gid) != 0) return fail(ErrnoStatus("fchown " + tmp));
  if (::fchmod(out.get(), item.mode) != 0) return fail(ErrnoStatus("fchmod " + tmp));
  if (Status s = WriteXattrs(out.get(), item.xattrs); !s.ok()) {
    return fail(s.WithContext("restoring extended attributes of " + item.path));
  }
  struct timespec times[2] = {Ts(item.atime_ns), Ts(item.mtime_ns)};
  if (::futimens(out.get(), times) != 0) return fail(ErrnoStatus("futimens " + tmp));
  if (::fsync(out.get()) != 0) return fail(ErrnoStatus("fsync " + tmp));
  // link() never replaces: a file that appeared meanwhile is not overwritten.
  if (::link(tmp.c_str(), item.path.c_str()) != 0) {
    if (errno == EEXIST) {
      return fail(AlreadyExists("a file appeared at " + item.path + " while restoring; not overwritten"));
    }
    return fail(ErrnoStatus("link " + item.path));
  }
  ::unlink(tmp.c_str());
  SyncDir(dir);
  if (item.parent.has_value()) (void)WriteDirTimes(dir, *item.parent);
  return Status::Ok();
}

Status QuarantineVault::Delete(const std::string& id) {
  if (!IsSafeId(id)) return InvalidArgument("vault id '" + id + "' is not a safe file name");
  QUELL_RETURN_IF_ERROR(RemoveFile(MetaPath(id)));
  QUELL_RETURN_IF_ERROR(RemoveFile(BlobPath(id)));
  SyncDir(dir_);
  return Status::Ok();
}

}  // namespace quell::agent::quarantine
