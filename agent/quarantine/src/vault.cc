#include "mamori/quarantine/vault.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"

namespace mamori::quarantine {
namespace {

constexpr char kDataMagic[4] = {'M', 'Q', 'V', '1'};
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr size_t kHeaderSize = sizeof kDataMagic + kNonceSize;
constexpr size_t kChunk = 1u << 16;
constexpr std::string_view kAadPrefix = "mamori-quarantine-v1:";
constexpr std::string_view kRestoreTmpPrefix = ".mamori-restore-";

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, const void* data, size_t n, const std::string& what) {
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write " + what);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return ErrnoError(errno, "fsync " + dir);
  return Status::Ok();
}

int64_t Ns(const struct timespec& ts) { return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec; }
struct timespec Ts(int64_t ns) {
  struct timespec ts {};
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  return ts;
}

std::string RandomId() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  return HexEncode(std::string_view(reinterpret_cast<char*>(b), sizeof b));
}

bool IsId(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// Encrypts everything readable from `in` into `out`; returns the plaintext SHA-256 (hex) and size.
Status Encrypt(int in, int out, const std::string& key, const std::string& id, std::string* sha256, uint64_t* size) {
  unsigned char nonce[kNonceSize];
  if (RAND_bytes(nonce, sizeof nonce) != 1) return InternalError("RAND_bytes failed");
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  std::string aad = std::string(kAadPrefix) + id;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, reinterpret_cast<const unsigned char*>(key.data()), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1) {
    return InternalError("AES-256-GCM setup failed");
  }
  MAMORI_RETURN_IF_ERROR(WriteAll(out, kDataMagic, sizeof kDataMagic, "vault data"));
  MAMORI_RETURN_IF_ERROR(WriteAll(out, nonce, sizeof nonce, "vault data"));
  scanner::Hasher hasher;
  std::vector<unsigned char> buf(kChunk), enc(kChunk + 32);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::pread(in, buf.data(), buf.size(), static_cast<off_t>(total));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read the file to quarantine");
    }
    if (n == 0) break;
    hasher.Update(std::string_view(reinterpret_cast<char*>(buf.data()), static_cast<size_t>(n)));
    if (EVP_EncryptUpdate(ctx.get(), enc.data(), &len, buf.data(), static_cast<int>(n)) != 1) {
      return InternalError("AES-256-GCM encryption failed");
    }
    MAMORI_RETURN_IF_ERROR(WriteAll(out, enc.data(), static_cast<size_t>(len), "vault data"));
    total += static_cast<uint64_t>(n);
  }
  unsigned char tag[kTagSize];
  if (EVP_EncryptFinal_ex(ctx.get(), enc.data(), &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, tag) != 1) {
    return InternalError("AES-256-GCM finalization failed");
  }
  MAMORI_RETURN_IF_ERROR(WriteAll(out, enc.data(), static_cast<size_t>(len), "vault data"));
  MAMORI_RETURN_IF_ERROR(WriteAll(out, tag, sizeof tag, "vault data"));
  *sha256 = hasher.Finish().hex(scanner::DigestKind::kSha256);
  *size = total;
  return Status::Ok();
}

// Decrypts the vault item `in` into `out`, authenticating it; returns the plaintext SHA-256 (hex).
Status Decrypt(int in, int out, const std::string& key, const std::string& id, std::string* sha256) {
  struct stat st {};
  if (::fstat(in, &st) != 0) return ErrnoError(errno, "stat vault item");
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < kHeaderSize + kTagSize) return DataLossError("vault item " + id + " is truncated");
  unsigned char header[kHeaderSize], tag[kTagSize];
  if (::pread(in, header, sizeof header, 0) != static_cast<ssize_t>(sizeof header) ||
      ::pread(in, tag, sizeof tag, static_cast<off_t>(file_size - kTagSize)) != static_cast<ssize_t>(sizeof tag)) {
    return DataLossError("vault item " + id + ": cannot read header or tag");
  }
  if (std::memcmp(header, kDataMagic, sizeof kDataMagic) != 0) return DataLossError("vault item " + id + ": bad magic");
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  std::string aad = std::string(kAadPrefix) + id;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, reinterpret_cast<const unsigned char*>(key.data()),
                         header + sizeof kDataMagic) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1) {
    return InternalError("AES-256-GCM setup failed");
  }
  scanner::Hasher hasher;
  std::vector<unsigned char> buf(kChunk), dec(kChunk + 32);
  uint64_t off = kHeaderSize;
  const uint64_t end = file_size - kTagSize;
  while (off < end) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, end - off));
    ssize_t n = ::pread(in, buf.data(), want, static_cast<off_t>(off));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return DataLossError("vault item " + id + ": short read");
    }
    if (EVP_DecryptUpdate(ctx.get(), dec.data(), &len, buf.data(), static_cast<int>(n)) != 1) {
      return DataLossError("vault item " + id + ": decryption failed");
    }
    hasher.Update(std::string_view(reinterpret_cast<char*>(dec.data()), static_cast<size_t>(len)));
    MAMORI_RETURN_IF_ERROR(WriteAll(out, dec.data(), static_cast<size_t>(len), "restored file"));
    off += static_cast<uint64_t>(n);
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), dec.data(), &len) != 1) {
    return DataLossError("vault item " + id + " failed authentication: damaged or tampered with");
  }
  *sha256 = hasher.Finish().hex(scanner::DigestKind::kSha256);
  return Status::Ok();
}

// Opens the directory holding `path`, refusing a symlink at every component.
Result<UniqueFd> OpenParentNoFollow(const std::string& path, std::string* base) {
  if (path.empty() || path.front() != '/') return InvalidArgumentError("restore target must be absolute: " + path);
  size_t slash = path.rfind('/');
  *base = path.substr(slash + 1);
  if (base->empty() || *base == "." || *base == "..") return InvalidArgumentError("bad restore target: " + path);
  UniqueFd cur(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (cur.get() < 0) return ErrnoError(errno, "open /");
  std::string_view rest = std::string_view(path).substr(1, slash == 0 ? 0 : slash - 1);
  while (!rest.empty()) {
    size_t s = rest.find('/');
    std::string comp(rest.substr(0, s));
    rest.remove_prefix(s == std::string_view::npos ? rest.size() : s + 1);
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") return InvalidArgumentError("restore target must not contain '..': " + path);
    UniqueFd next(::openat(cur.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) {
      if (errno == ELOOP || errno == ENOTDIR) {
        return PermissionDeniedError("restore target " + path + ": '" + comp + "' is a symlink or not a directory");
      }
      return ErrnoError(errno, "restore target " + path + ": open " + comp);
    }
    cur = std::move(next);
  }
  return cur;
}

std::string Escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == '%' || c == 0x7f) {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02x", c);
      out += b;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

bool Unescape(std::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    std::string byte;
    if (i + 2 >= s.size() + 0 || !HexDecode(s.substr(i + 1, 2), &byte)) return false;
    out->append(byte);
    i += 2;
  }
  return true;
}

}  // namespace

std::string SerializeRecord(const Record& r) {
  std::string out = "format=1\n";
  auto kv = [&](std::string_view k, std::string_view v) {
    out.append(k);
    out.push_back('=');
    out.append(Escape(v));
    out.push_back('\n');
  };
  kv("id", r.id);
  kv("state", r.state);
  kv("original_path", r.original_path);
  kv("size", std::to_string(r.size));
  kv("uid", std::to_string(r.uid));
  kv("gid", std::to_string(r.gid));
  kv("mode", std::to_string(r.mode));
  kv("atime_ns", std::to_string(r.atime_ns));
  kv("mtime_ns", std::to_string(r.mtime_ns));
  kv("dev", std::to_string(r.dev));
  kv("ino", std::to_string(r.ino));
  kv("sha256", r.sha256);
  kv("detection", r.detection);
  kv("signature_version", r.signature_version);
  kv("quarantined_at", std::to_string(r.quarantined_at));
  kv("restore_target", r.restore_target);
  return out;
}

Result<Record> ParseRecord(std::string_view text, std::string_view source) {
  Record r;
  size_t line_no = 0;
  bool saw_format = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return DataLossError(std::string(source) + ": truncated record");
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    auto where = [&] { return std::string(source) + ":" + std::to_string(line_no) + ": "; };
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return DataLossError(where() + "expected key=value");
    std::string_view key = line.substr(0, eq);
    std::string v;
    if (!Unescape(line.substr(eq + 1), &v)) return DataLossError(where() + "bad escape");
    auto num = [&](auto* out) -> bool {
      char* end = nullptr;
      errno = 0;
      long long x = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || errno != 0 || *end != '\0') return false;
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(x);
      return true;
    };
    bool ok = true;
    if (key == "format") {
      saw_format = v == "1";
      if (!saw_format) return DataLossError(where() + "unsupported record format " + v);
    } else if (key == "id") r.id = v;
    else if (key == "state") r.state = v;
    else if (key == "original_path") r.original_path = v;
    else if (key == "size") ok = num(&r.size);
    else if (key == "uid") ok = num(&r.uid);
    else if (key == "gid") ok = num(&r.gid);
    else if (key == "mode") ok = num(&r.mode);
    else if (key == "atime_ns") ok = num(&r.atime_ns);
    else if (key == "mtime_ns") ok = num(&r.mtime_ns);
    else if (key == "dev") ok = num(&r.dev);
    else if (key == "ino") ok = num(&r.ino);
    else if (key == "sha256") r.sha256 = v;
    else if (key == "detection") r.detection = v;
    else if (key == "signature_version") r.signature_version = v;
    else if (key == "quarantined_at") ok = num(&r.quarantined_at);
    else if (key == "restore_target") r.restore_target = v;
    // Unknown keys from a newer agent are kept out but tolerated.
    if (!ok) return DataLossError(where() + std::string(key) + " must be a number");
  }
  if (!saw_format || !IsId(r.id) || r.sha256.size() != 64) return DataLossError(std::string(source) + ": incomplete record");
  if (r.state != "pending" && r.state != "quarantined" && r.state != "restoring") {
    return DataLossError(std::string(source) + ": unknown state '" + r.state + "'");
  }
  return r;
}

Vault::Vault(std::string dir, VaultOptions options, std::string key)
    : dir_(std::move(dir)), options_(std::move(options)), key_(std::move(key)) {}

Result<std::unique_ptr<Vault>> Vault::Open(const std::string& dir, VaultOptions options) {
  MAMORI_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return ErrnoError(errno, "stat " + dir);
  if ((st.st_mode & 077) != 0) {
    return PermissionDeniedError("quarantine vault " + dir + " must not be accessible to group or others (mode " +
                                 std::to_string(st.st_mode & 0777) + ")");
  }
  std::string key_path = dir + "/vault.key";
  std::string key;
  UniqueFd kfd(::open(key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (kfd.get() >= 0) {
    key.resize(32);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), 32) != 1) return InternalError("RAND_bytes failed");
    Status s = WriteAll(kfd.get(), key.data(), key.size(), key_path);
    if (s.ok() && ::fsync(kfd.get()) != 0) s = ErrnoError(errno, "fsync " + key_path);
    if (!s.ok()) {
      ::unlink(key_path.c_str());
      return s;
    }
    MAMORI_RETURN_IF_ERROR(FsyncDir(dir));
  } else if (errno == EEXIST) {
    struct stat kst {};
    if (::lstat(key_path.c_str(), &kst) != 0 || !S_ISREG(kst.st_mode) || (kst.st_mode & 077) != 0) {
      return PermissionDeniedError(key_path + " must be a regular file with mode 0600");
    }
    auto data = ReadFileToString(key_path);
    if (!data.ok()) return data.status();
    if (data->size() != 32) return DataLossError(key_path + ": expected 32 bytes, found " + std::to_string(data->size()));
    key = std::move(*data);
  } else {
    return ErrnoError(errno, "create " + key_path);
  }
  std::unique_ptr<Vault> v(new Vault(dir, std::move(options), std::move(key)));
  MAMORI_RETURN_IF_ERROR(v->Reconcile());
  return v;
}

namespace {

Status CommitRecord(const std::string& dir, const Record& r) {
  return WriteFileAtomically(dir + "/" + r.id + ".rec", SerializeRecord(r), 0600);
}

Result<Record> LoadRecord(const std::string& dir, const std::string& id) {
  if (!IsId(id)) return NotFoundError("no quarantine item '" + id + "'");
  std::string path = dir + "/" + id + ".rec";
  auto text = ReadFileToString(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return NotFoundError("no quarantine item " + id);
    return text.status();
  }
  return ParseRecord(*text, path);
}

void RemoveItem(const std::string& dir, const std::string& id) {
  ::unlink((dir + "/" + id + ".data").c_str());
  ::unlink((dir + "/" + id + ".rec").c_str());
  (void)FsyncDir(dir);
}

// Unlinks `path` only if it is still the inode (dev, ino) — never a replacement.
// NOT_FOUND when it is already gone.
Status UnlinkIfSame(const std::string& path, uint64_t dev, uint64_t ino) {
  size_t slash = path.rfind('/');
  std::string parent = slash == 0 ? "/" : (slash == std::string::npos ? "." : path.substr(0, slash));
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  UniqueFd dfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) return ErrnoError(errno, "open " + parent);
  struct stat st {};
  if (::fstatat(dfd.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ErrnoError(errno, "stat " + path);
  if (static_cast<uint64_t>(st.st_dev) != dev || static_cast<uint64_t>(st.st_ino) != ino) {
    return FailedPreconditionError(path + " was replaced since it was scanned; left in place");
  }
  if (::unlinkat(dfd.get(), base.c_str(), 0) != 0 && errno != ENOENT) return ErrnoError(errno, "unlink " + path);
  if (::fsync(dfd.get()) != 0) return ErrnoError(errno, "fsync " + parent);
  return Status::Ok();
}

}  // namespace

Result<Record> Vault::Quarantine(const std::string& path, int fd, const std::string& detection,
                                 const std::string& signature_version) {
  std::lock_guard<std::mutex> lock(mu_);
  UniqueFd own;
  if (fd < 0) {
    own = UniqueFd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (own.get() < 0) return ErrnoError(errno, "open " + path);
    fd = own.get();
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(path + ": only regular files are quarantined");

  Record r;
  r.id = RandomId();
  r.state = "pending";
  r.original_path = path;
  r.uid = st.st_uid;
  r.gid = st.st_gid;
  r.mode = st.st_mode & 07777;
  r.atime_ns = Ns(st.st_atim);
  r.mtime_ns = Ns(st.st_mtim);
  r.dev = static_cast<uint64_t>(st.st_dev);
  r.ino = static_cast<uint64_t>(st.st_ino);
  r.detection = detection;
  r.signature_version = signature_version;
  r.quarantined_at = static_cast<int64_t>(std::time(nullptr));

  const std::string data_path = dir_ + "/" + r.id + ".data";
  const std::string tmp_path = data_path + ".tmp";
  {
    UniqueFd out(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (out.get() < 0) return ErrnoError(errno, "create " + tmp_path);
    Status s = Encrypt(fd, out.get(), key_, r.id, &r.sha256, &r.size);
    if (s.ok() && ::fsync(out.get()) != 0) s = ErrnoError(errno, "fsync " + tmp_path);
    if (s.ok() && ::rename(tmp_path.c_str(), data_path.c_str()) != 0) s = ErrnoError(errno, "rename " + tmp_path);
    if (s.ok()) s = FsyncDir(dir_);
    if (!s.ok()) {
      ::unlink(tmp_path.c_str());
      return s;
    }
  }
  Hook(Step::kDataWritten);
  if (Status s = CommitRecord(dir_, r); !s.ok()) {
    RemoveItem(dir_, r.id);
    return s;
  }
  Hook(Step::kRecordPending);
  if (Status s = UnlinkIfSame(path, r.dev, r.ino); !s.ok()) {
    // Replaced: the original stays where it is. Gone (someone — or an earlier
    // quarantine of the same file — removed it): a second copy would only be
    // a silent duplicate. Either way nothing is lost by dropping ours.
    RemoveItem(dir_, r.id);
    return s;
  }
  Hook(Step::kOriginalUnlinked);
  r.state = "quarantined";
  // If this commit fails the record stays "pending", which Reconcile completes.
  MAMORI_RETURN_IF_ERROR(CommitRecord(dir_, r));
  return r;
}

Result<Record> Vault::Restore(const std::string& id, const RestoreOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  auto rec = LoadRecord(dir_, id);
  if (!rec.ok()) return rec.status();
  Record r = std::move(*rec);
  if (r.state != "quarantined") return FailedPreconditionError("quarantine item " + id + " is " + r.state);
  const std::string target = options.to.empty() ? r.original_path : options.to;
  std::string base;
  auto dir_fd = OpenParentNoFollow(target, &base);
  if (!dir_fd.ok()) return dir_fd.status();
  struct stat existing {};
  if (!options.force && ::fstatat(dir_fd->get(), base.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) {
    return Status(StatusCode::kAlreadyExists, target + " exists; pass force to replace it");
  }
  UniqueFd data(::open((dir_ + "/" + id + ".data").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (data.get() < 0) return ErrnoError(errno, "open vault item " + id);

  r.state = "restoring";
  r.restore_target = target;
  MAMORI_RETURN_IF_ERROR(CommitRecord(dir_, r));
  Hook(Step::kRecordRestoring);
  auto back_to_quarantined = [&](const Status& why) -> Status {
    r.state = "quarantined";
    r.restore_target.clear();
    (void)CommitRecord(dir_, r);
    return why;
  };

  const std::string tmp = std::string(kRestoreTmpPrefix) + id;
  ::unlinkat(dir_fd->get(), tmp.c_str(), 0);  // leftover of an earlier crash
  UniqueFd out(::openat(dir_fd->get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.get() < 0) return back_to_quarantined(ErrnoError(errno, "create temporary file beside " + target));
  std::string sha256;
  Status s = Decrypt(data.get(), out.get(), key_, id, &sha256);
  if (s.ok() && sha256 != r.sha256) s = DataLossError("vault item " + id + ": SHA-256 of the restored bytes differs");
  // Owner first (it may clear set-id bits), then mode, then times.
  if (s.ok() && ::fchown(out.get(), r.uid, r.gid) != 0 && errno != EPERM) s = ErrnoError(errno, "chown " + target);
  if (s.ok() && ::fchmod(out.get(), r.mode) != 0) s = ErrnoError(errno, "chmod " + target);
  struct timespec times[2] = {Ts(r.atime_ns), Ts(r.mtime_ns)};
  if (s.ok() && ::futimens(out.get(), times) != 0) s = ErrnoError(errno, "set times of " + target);
  if (s.ok() && ::fsync(out.get()) != 0) s = ErrnoError(errno, "fsync " + target);
  if (!s.ok()) {
    ::unlinkat(dir_fd->get(), tmp.c_str(), 0);
    return back_to_quarantined(s);
  }
  Hook(Step::kTargetWritten);
  if (options.force) {
    if (::renameat(dir_fd->get(), tmp.c_str(), dir_fd->get(), base.c_str()) != 0) s = ErrnoError(errno, "rename into " + target);
  } else {
    // link() never replaces: a file that appeared meanwhile is not overwritten.
    if (::linkat(dir_fd->get(), tmp.c_str(), dir_fd->get(), base.c_str(), 0) != 0) {
      s = errno == EEXIST ? Status(StatusCode::kAlreadyExists, target + " exists; pass force to replace it")
                          : ErrnoError(errno, "link into " + target);
    }
    ::unlinkat(dir_fd->get(), tmp.c_str(), 0);
  }
  if (s.ok() && ::fsync(dir_fd->get()) != 0) s = ErrnoError(errno, "fsync the folder of " + target);
  if (!s.ok()) {
    ::unlinkat(dir_fd->get(), tmp.c_str(), 0);
    return back_to_quarantined(s);
  }
  Hook(Step::kTargetLinked);
  if (!options.allow_list_path.empty()) {
    auto old = ReadFileToString(options.allow_list_path);
    std::string text = old.ok() ? *old : std::string();
    if (!text.empty() && text.back() != '\n') text.push_back('\n');
    text += "sha256:" + r.sha256 + "  # restored from quarantine " + id + " (" + r.detection + ")\n";
    MAMORI_RETURN_IF_ERROR(WriteFileAtomically(options.allow_list_path, text, 0600));
  }
  RemoveItem(dir_, id);
  r.restore_target = target;
  return r;
}

Status Vault::Delete(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto rec = LoadRecord(dir_, id);
  if (!rec.ok()) return rec.status();
  RemoveItem(dir_, id);
  return Status::Ok();
}

Result<std::vector<Record>> Vault::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Record> out;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return ErrnoError(errno, "open " + dir_);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() != 36 || name.compare(32, 4, ".rec") != 0) continue;
    auto r = LoadRecord(dir_, name.substr(0, 32));
    if (r.ok()) out.push_back(std::move(*r));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const Record& a, const Record& b) {
    return a.quarantined_at != b.quarantined_at ? a.quarantined_at < b.quarantined_at : a.id < b.id;
  });
  return out;
}

Result<size_t> Vault::Purge(int64_t now_unix) {
  auto items = List();
  if (!items.ok()) return items.status();
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  std::vector<std::pair<Record, uint64_t>> kept;
  size_t purged = 0;
  for (auto& r : *items) {
    if (r.state != "quarantined") continue;
    if (now_unix - r.quarantined_at > options_.retention_seconds) {
      RemoveItem(dir_, r.id);
      ++purged;
      continue;
    }
    struct stat st {};
    uint64_t size = ::stat((dir_ + "/" + r.id + ".data").c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    total += size;
    kept.emplace_back(std::move(r), size);
  }
  for (auto& [r, size] : kept) {  // oldest first
    if (total <= options_.quota_bytes) break;
    RemoveItem(dir_, r.id);
    total -= size;
    ++purged;
  }
  return purged;
}

Status Vault::Reconcile() {
  std::lock_guard<std::mutex> lock(mu_);
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return ErrnoError(errno, "open " + dir_);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto& name : names) {
    // Temporary files: writes a crash interrupted before their rename.
    if (name.find(".tmp") != std::string::npos) ::unlink((dir_ + "/" + name).c_str());
  }
  for (const auto& name : names) {
    if (name.size() != 37 || name.compare(32, 5, ".data") != 0 || !IsId(name.substr(0, 32))) continue;
    std::string id = name.substr(0, 32);
    struct stat st {};
    if (::stat((dir_ + "/" + id + ".rec").c_str(), &st) != 0) {
      // Data without a record: the crash came before the record was committed,
      // so the original was never touched. The copy is redundant.
      ::unlink((dir_ + "/" + name).c_str());
    }
  }
  for (const auto& name : names) {
    if (name.size() != 36 || name.compare(32, 4, ".rec") != 0 || !IsId(name.substr(0, 32))) continue;
    std::string id = name.substr(0, 32);
    auto rec = LoadRecord(dir_, id);
    if (!rec.ok()) continue;  // unreadable record: keep everything, never guess
    Record r = std::move(*rec);
    struct stat st {};
    const bool has_data = ::stat((dir_ + "/" + id + ".data").c_str(), &st) == 0;
    if (!has_data) {
      // Records are committed after their data; without data the item is gone already.
      ::unlink((dir_ + "/" + name).c_str());
      continue;
    }
    if (r.state == "pending") {
      // Finish the move: the vault copy is durable, so the original may go.
      Status s = UnlinkIfSame(r.original_path, r.dev, r.ino);
      if (s.code() == StatusCode::kFailedPrecondition || s.code() == StatusCode::kNotFound) {
        // Another file holds the path now, or the crash came after the unlink:
        // ours is safe in the vault either way.
      } else if (!s.ok()) {
        continue;  // try again at the next start
      }
      r.state = "quarantined";
      MAMORI_RETURN_IF_ERROR(CommitRecord(dir_, r));
    } else if (r.state == "restoring") {
      std::string base;
      auto dfd = OpenParentNoFollow(r.restore_target, &base);
      bool finished = false;
      if (dfd.ok()) {
        ::unlinkat(dfd->get(), (std::string(kRestoreTmpPrefix) + id).c_str(), 0);
        UniqueFd t(::openat(dfd->get(), base.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
        if (t.get() >= 0) {
          std::string data_sha;
          auto content = ReadFileToString("/proc/self/fd/" + std::to_string(t.get()));
          finished = content.ok() && scanner::Hasher::Of(*content).hex(scanner::DigestKind::kSha256) == r.sha256;
        }
      }
      if (finished) {
        RemoveItem(dir_, id);  // the file is back in place, byte for byte
      } else {
        r.state = "quarantined";
        r.restore_target.clear();
        MAMORI_RETURN_IF_ERROR(CommitRecord(dir_, r));
      }
    }
  }
  return Status::Ok();
}

}  // namespace mamori::quarantine
