#include "mamori/signatures/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>

#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"

namespace mamori::signatures {
namespace {

constexpr std::string_view kManifestName = "manifest";
constexpr std::string_view kSignatureName = "manifest.sig";
// Domain separation: a manifest signature can never be mistaken for, or
// replayed as, a signature over anything else.
constexpr std::string_view kSignedPrefix = "mamori-bundle-manifest-v1\n";
constexpr const char* kPartDirs[] = {"hashes", "yara", "allowlist", "behavior"};

std::string Sha256Hex(std::string_view data) {
  return scanner::Hasher::Of(data).hex(scanner::DigestKind::kSha256);
}

bool IsHex(std::string_view s, size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Part paths are relative, plain, and live under one of the known folders:
// nothing a tar extractor could turn into a write outside its target.
Status CheckPartPath(std::string_view path) {
  auto bad = [&](const char* why) {
    return InvalidArgumentError("unsafe member name '" + std::string(path) + "': " + why);
  };
  if (path.empty() || path.size() > 255) return bad("empty or longer than 255 bytes");
  for (char c : path) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '+' || c == '/')) {
      return bad("only letters, digits, '.', '_', '-', '+' and '/' are allowed");
    }
  }
  if (path.front() == '/') return bad("absolute path");
  size_t start = 0;
  bool first = true;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view comp = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (comp.empty()) return bad("empty path component");
    if (comp == "." || comp == "..") return bad("'.' or '..' component");
    if (first) {
      if (std::none_of(std::begin(kPartDirs), std::end(kPartDirs), [&](const char* d) { return comp == d; })) {
        return bad("must be under hashes/, yara/, allowlist/ or behavior/");
      }
      if (slash == std::string_view::npos) return bad("a folder, not a file");
      first = false;
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

std::string NowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string SignatureFile(const std::string& key_id, std::string_view sig) {
  return "key-id " + key_id + "\ned25519 " + HexEncode(sig) + "\n";
}

Status ParseSignatureFile(std::string_view text, std::string* key_id, std::string* sig) {
  constexpr std::string_view kKey = "key-id ", kSig = "ed25519 ";
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos || text.substr(0, kKey.size()) != kKey) {
    return InvalidArgumentError("manifest.sig: expected 'key-id <16 hex>' on line 1");
  }
  *key_id = std::string(text.substr(kKey.size(), nl - kKey.size()));
  if (!IsHex(*key_id, 16)) return InvalidArgumentError("manifest.sig:1: key id must be 16 lowercase hex digits");
  std::string_view rest = text.substr(nl + 1);
  if (rest.substr(0, kSig.size()) != kSig || rest.size() != kSig.size() + 128 + 1 || rest.back() != '\n' ||
      !IsHex(rest.substr(kSig.size(), 128), 128) || !HexDecode(rest.substr(kSig.size(), 128), sig)) {
    return InvalidArgumentError("manifest.sig:2: expected 'ed25519 <128 hex>'");
  }
  return Status::Ok();
}

struct ArchiveReadCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteCloser {
  void operator()(archive* a) const { archive_write_free(a); }
};

// Reads every member into memory, checking names and sizes, parsing nothing.
Result<std::map<std::string, std::string>> ReadMembers(const std::string& path, const ReadOptions& options) {
  std::unique_ptr<archive, ArchiveReadCloser> a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_gzip(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    const char* err = archive_error_string(a.get());
    return InvalidArgumentError(path + ": corrupt or truncated bundle, or not a bundle: " + (err ? err : "unknown error"));
  }
  std::map<std::string, std::string> members;
  uint64_t total = 0;
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK) {
      const char* err = archive_error_string(a.get());
      return InvalidArgumentError(path + ": corrupt or truncated bundle: " + (err ? err : "bad header"));
    }
    const char* raw_name = archive_entry_pathname(e);
    std::string name = raw_name != nullptr ? raw_name : "";
    if (name != kManifestName && name != kSignatureName) {
      if (Status s = CheckPartPath(name); !s.ok()) return s.WithContext(path);
    }
    if (archive_entry_filetype(e) != AE_IFREG) {
      return InvalidArgumentError(path + ": member '" + name + "' is not a regular file");
    }
    if (members.count(name) != 0) return InvalidArgumentError(path + ": member '" + name + "' appears twice");
    std::string data;
    char buf[1 << 16];
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buf, sizeof buf);
      if (n == 0) break;
      if (n < 0) {
        const char* err = archive_error_string(a.get());
        return InvalidArgumentError(path + ": corrupt or truncated bundle in '" + name + "': " +
                                    (err ? err : "read error"));
      }
      total += static_cast<uint64_t>(n);
      if (data.size() + static_cast<size_t>(n) > options.max_member_bytes || total > options.max_total_bytes) {
        return ResourceExhaustedError(path + ": member '" + name + "' exceeds the bundle size limits");
      }
      data.append(buf, static_cast<size_t>(n));
    }
    members.emplace(std::move(name), std::move(data));
  }
  return members;
}

}  // namespace

std::string Manifest::Serialize() const {
  std::string out = "mamori-bundle " + std::to_string(format) + "\n";
  out += "version " + std::to_string(version) + "\n";
  out += "created " + created + "\n";
  out += "key-id " + key_id + "\n";
  for (const auto& p : parts) out += "part " + p.sha256 + " " + std::to_string(p.size) + " " + p.path + "\n";
  return out;
}

Result<Manifest> Manifest::Parse(std::string_view text) {
  Manifest m;
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return InvalidArgumentError("manifest: last line lacks its newline");
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  auto err = [](size_t line, const std::string& what) {
    return InvalidArgumentError("manifest:" + std::to_string(line + 1) + ": " + what);
  };
  auto field = [&](size_t i, std::string_view key) -> Result<std::string_view> {
    if (i >= lines.size()) return err(i, "missing '" + std::string(key) + "' line");
    std::string_view l = lines[i];
    if (l.substr(0, key.size() + 1) != std::string(key) + " ") return err(i, "expected '" + std::string(key) + " ...'");
    return l.substr(key.size() + 1);
  };
  auto fmt = field(0, "mamori-bundle");
  if (!fmt.ok()) return fmt.status();
  uint64_t format = 0;
  if (!ParseU64(*fmt, &format)) return err(0, "format must be a number");
  if (format != kBundleFormat) {
    return err(0, "unsupported bundle format " + std::string(*fmt) + " (this build reads format " +
                      std::to_string(kBundleFormat) + ")");
  }
  auto version = field(1, "version");
  if (!version.ok()) return version.status();
  if (!ParseU64(*version, &m.version) || m.version == 0) return err(1, "version must be a positive integer");
  auto created = field(2, "created");
  if (!created.ok()) return created.status();
  m.created = std::string(*created);
  if (m.created.size() != 20 || m.created.back() != 'Z') return err(2, "created must be RFC 3339 UTC (YYYY-MM-DDThh:mm:ssZ)");
  auto key = field(3, "key-id");
  if (!key.ok()) return key.status();
  m.key_id = std::string(*key);
  if (!IsHex(m.key_id, 16)) return err(3, "key id must be 16 lowercase hex digits");
  for (size_t i = 4; i < lines.size(); ++i) {
    auto rest = field(i, "part");
    if (!rest.ok()) return rest.status();
    std::string_view r = *rest;
    size_t s1 = r.find(' ');
    size_t s2 = s1 == std::string_view::npos ? s1 : r.find(' ', s1 + 1);
    if (s2 == std::string_view::npos) return err(i, "expected 'part <sha256> <size> <path>'");
    ManifestPart p;
    p.sha256 = std::string(r.substr(0, s1));
    if (!IsHex(p.sha256, 64)) return err(i, "part digest must be 64 lowercase hex digits");
    if (!ParseU64(r.substr(s1 + 1, s2 - s1 - 1), &p.size)) {
      return err(i, "part size must be a number");
    }
    p.path = std::string(r.substr(s2 + 1));
    if (Status s = CheckPartPath(p.path); !s.ok()) return err(i, s.message());
    if (!m.parts.empty() && m.parts.back().path >= p.path) return err(i, "parts must be sorted by path and unique");
    m.parts.push_back(std::move(p));
  }
  return m;
}

Result<VerifiedBundle> ReadBundle(const std::string& path, const TrustedKeys& trusted, const ReadOptions& options) {
  auto members = ReadMembers(path, options);
  if (!members.ok()) return members.status();
  auto manifest_it = members->find(std::string(kManifestName));
  auto sig_it = members->find(std::string(kSignatureName));
  if (manifest_it == members->end()) return InvalidArgumentError(path + ": no manifest: not a Mamori bundle");
  if (sig_it == members->end()) return PermissionDeniedError(path + ": missing signature (manifest.sig)");

  // The signature first: nothing inside is interpreted before it checks out.
  std::string key_id, sig;
  if (Status s = ParseSignatureFile(sig_it->second, &key_id, &sig); !s.ok()) return s.WithContext(path);
  const PublicKey* key = trusted.Find(key_id);
  if (key == nullptr) {
    return PermissionDeniedError(path + ": signed by unknown key id " + key_id + " (not among the trusted keys)");
  }
  std::string signed_bytes = std::string(kSignedPrefix) + manifest_it->second;
  if (!key->Verify(signed_bytes, sig)) {
    return PermissionDeniedError(path + ": bad signature: the manifest was not signed by key " + key_id);
  }

  auto manifest = Manifest::Parse(manifest_it->second);
  if (!manifest.ok()) return manifest.status().WithContext(path);
  if (manifest->key_id != key_id) {
    return PermissionDeniedError(path + ": manifest names key " + manifest->key_id + " but was signed by " + key_id);
  }
  if (options.min_exclusive_version > 0 && manifest->version <= options.min_exclusive_version) {
    return FailedPreconditionError(path + ": bundle version " + std::to_string(manifest->version) +
                                   " is not newer than version " + std::to_string(options.min_exclusive_version) +
                                   " in use (downgrade or replay refused)");
  }
  VerifiedBundle out;
  for (const auto& part : manifest->parts) {
    auto it = members->find(part.path);
    if (it == members->end()) return InvalidArgumentError(path + ": part " + part.path + " listed but missing");
    if (it->second.size() != part.size) {
      return InvalidArgumentError(path + ": part " + part.path + ": size " + std::to_string(it->second.size()) +
                                  " does not match the manifest's " + std::to_string(part.size));
    }
    if (Sha256Hex(it->second) != part.sha256) {
      return InvalidArgumentError(path + ": part " + part.path + ": SHA-256 does not match the manifest");
    }
    out.parts.push_back(scanner::SignaturePart{part.path, std::move(it->second)});
    members->erase(it);
  }
  members->erase(std::string(kManifestName));
  members->erase(std::string(kSignatureName));
  if (!members->empty()) {
    return InvalidArgumentError(path + ": member " + members->begin()->first + " is not listed in the manifest");
  }
  out.manifest = std::move(*manifest);
  return out;
}

Result<Manifest> ReadManifestUnverified(const std::string& path) {
  auto members = ReadMembers(path, ReadOptions{});
  if (!members.ok()) return members.status();
  auto it = members->find(std::string(kManifestName));
  if (it == members->end()) return InvalidArgumentError(path + ": no manifest: not a Mamori bundle");
  auto m = Manifest::Parse(it->second);
  if (!m.ok()) return m.status().WithContext(path);
  return m;
}

Result<std::shared_ptr<const scanner::SignatureSet>> LoadBundle(const std::string& path, const TrustedKeys& trusted,
                                                                const ReadOptions& options) {
  auto bundle = ReadBundle(path, trusted, options);
  if (!bundle.ok()) return bundle.status();
  auto set = scanner::BuildSignatureSet(bundle->parts, bundle->manifest.version, bundle->manifest.key_id);
  if (!set.ok()) return set.status().WithContext(path);
  return set;
}

bool IsBundlePath(const std::string& path) {
  return path.size() > 8 && path.compare(path.size() - 8, 8, ".mbundle") == 0;
}

Result<std::shared_ptr<const scanner::SignatureSet>> LoadSignatureSources(
    const std::vector<std::string>& paths, const std::vector<std::string>& trusted_key_files,
    uint64_t min_exclusive_version) {
  if (std::none_of(paths.begin(), paths.end(), IsBundlePath)) return scanner::LoadSignatures(paths);
  if (paths.size() != 1) return InvalidArgumentError("a signature bundle must be the only signature source");
  if (trusted_key_files.empty()) return InvalidArgumentError("no trusted key to verify " + paths[0]);
  TrustedKeys keys;
  for (const auto& k : trusted_key_files) MAMORI_RETURN_IF_ERROR(keys.AddFile(k));
  ReadOptions o;
  o.min_exclusive_version = min_exclusive_version;
  return LoadBundle(paths[0], keys, o);
}

namespace {

struct SourceFile {
  std::string rel;  // path inside the bundle
  std::string data;
};

Result<std::vector<SourceFile>> CollectBuildFiles(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return InvalidArgumentError(dir + ": not a directory");
  std::vector<SourceFile> files;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::string rel = std::filesystem::relative(it->path(), dir, ec).string();
    if (it->is_directory(ec)) {
      if (it.depth() == 0 && std::none_of(std::begin(kPartDirs), std::end(kPartDirs), [&](const char* d) { return rel == d; })) {
        return InvalidArgumentError(dir + ": unexpected folder '" + rel + "' (expected hashes/, yara/, allowlist/, behavior/)");
      }
      continue;
    }
    if (!it->is_regular_file(ec)) return InvalidArgumentError(dir + ": '" + rel + "' is not a regular file");
    MAMORI_RETURN_IF_ERROR(CheckPartPath(rel).WithContext(dir));
    auto type = scanner::SignatureFileTypeOf(rel);
    std::string top = rel.substr(0, rel.find('/'));
    bool fits = (top == "hashes" && type == scanner::SignatureFileType::kHashes) ||
                (top == "yara" && type == scanner::SignatureFileType::kYara) ||
                (top == "allowlist" && type == scanner::SignatureFileType::kAllow) || top == "behavior";
    if (!fits) return InvalidArgumentError(dir + "/" + rel + ": file type does not belong in " + top + "/");
    auto data = ReadFileToString(it->path().string());
    if (!data.ok()) return data.status();
    files.push_back(SourceFile{rel, std::move(*data)});
  }
  if (ec) return InvalidArgumentError(dir + ": " + ec.message());
  std::sort(files.begin(), files.end(), [](const SourceFile& a, const SourceFile& b) { return a.rel < b.rel; });
  return files;
}

Status WriteMember(archive* a, const std::string& name, std::string_view data, time_t mtime) {
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
  archive_entry_set_mtime(e.get(), mtime, 0);
  if (archive_write_header(a, e.get()) != ARCHIVE_OK ||
      (!data.empty() && archive_write_data(a, data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))) {
    const char* err = archive_error_string(a);
    return InternalError("writing bundle member " + name + ": " + (err ? err : "unknown error"));
  }
  return Status::Ok();
}

}  // namespace

Result<BuildReport> BuildBundle(const std::string& dir, const std::string& out_path, const PrivateKey& key,
                                const BuildOptions& options) {
  if (options.version == 0) return InvalidArgumentError("bundle version must be a positive integer");
  auto files = CollectBuildFiles(dir);
  if (!files.ok()) return files.status();

  // Validate exactly as an agent will load it: a bundle that would be refused is never written.
  BuildReport report;
  std::vector<scanner::SignaturePart> parts;
  for (const auto& f : *files) {
    if (f.rel.rfind("behavior/", 0) == 0) {
      ++report.behavior_files;
      continue;
    }
    parts.push_back(scanner::SignaturePart{f.rel, f.data});
  }
  auto set = scanner::BuildSignatureSet(parts, options.version, key.public_key().key_id());
  if (!set.ok()) return set.status();
  report.hash_count = (*set)->hashes.size();
  report.rule_count = (*set)->yara ? (*set)->yara->rule_count() : 0;
  report.allow_count = (*set)->allow.sha256_count() + (*set)->allow.glob_count();
  if ((*set)->yara) report.warnings = (*set)->yara->warnings();
  if (options.strict && !report.warnings.empty()) {
    std::string msg = "--strict: " + std::to_string(report.warnings.size()) + " YARA warning(s):";
    for (const auto& w : report.warnings) {
      msg += "\n" + w.path + ":" + std::to_string(w.line) + ": " + (w.rule.empty() ? "" : "rule " + w.rule + ": ") +
             w.message;
    }
    return FailedPreconditionError(msg);
  }

  Manifest& m = report.manifest;
  m.version = options.version;
  m.created = NowRfc3339();
  m.key_id = key.public_key().key_id();
  for (const auto& f : *files) m.parts.push_back(ManifestPart{f.rel, f.data.size(), Sha256Hex(f.data)});
  std::string manifest_text = m.Serialize();
  auto sig = key.Sign(std::string(kSignedPrefix) + manifest_text);
  if (!sig.ok()) return sig.status();

  std::string tmp = out_path + ".tmp." + std::to_string(::getpid());
  {
    std::unique_ptr<archive, ArchiveWriteCloser> a(archive_write_new());
    archive_write_set_format_pax_restricted(a.get());
    archive_write_add_filter_gzip(a.get());
    if (archive_write_open_filename(a.get(), tmp.c_str()) != ARCHIVE_OK) {
      const char* err = archive_error_string(a.get());
      return InvalidArgumentError("cannot write " + tmp + ": " + (err ? err : "unknown error"));
    }
    const time_t mtime = std::time(nullptr);
    Status s = WriteMember(a.get(), std::string(kManifestName), manifest_text, mtime);
    if (s.ok()) s = WriteMember(a.get(), std::string(kSignatureName), SignatureFile(m.key_id, *sig), mtime);
    for (const auto& f : *files) {
      if (!s.ok()) break;
      s = WriteMember(a.get(), f.rel, f.data, mtime);
    }
    if (s.ok() && archive_write_close(a.get()) != ARCHIVE_OK) s = InternalError("closing " + tmp);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
  }
  if (::rename(tmp.c_str(), out_path.c_str()) != 0) {
    Status s = ErrnoError(errno, "rename " + tmp + " to " + out_path);
    ::unlink(tmp.c_str());
    return s;
  }
  return report;
}

}  // namespace mamori::signatures
