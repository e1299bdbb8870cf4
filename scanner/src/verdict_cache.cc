#include "mamori/scanner/verdict_cache.h"

#include <cstring>

#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"

namespace mamori::scanner {
namespace {

// File layout (little-endian, format version 3; bump kFormat on any change):
//   "MAMORIVC" | u32 format | u32 reserved | 64 bytes signature version (hex) |
//   u64 count | count * entry | 32-byte SHA-256 of everything before it.
// entry: 40-byte key (dev, ino, size, mtime_ns, ctime_ns) | u32 n | n bytes:
// nothing for a clean file, else the file's SHA-256 and its findings.
constexpr char kMagic[8] = {'M', 'A', 'M', 'O', 'R', 'I', 'V', 'C'};
constexpr uint32_t kFormat = 3;
constexpr size_t kHeaderSize = 8 + 4 + 4 + 64 + 8;
constexpr size_t kKeySize = 40;

template <typename T>
void Put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void PutString(std::string& out, std::string_view v) {
  Put<uint32_t>(out, static_cast<uint32_t>(v.size()));
  out.append(v);
}

// Bounds-checked reader over a serialized blob.
class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool U32(uint32_t* v) {
    if (d_.size() < 4) return false;
    std::memcpy(v, d_.data(), 4);
    d_.remove_prefix(4);
    return true;
  }
  bool Str(std::string* s) {
    uint32_t n = 0;
    if (!U32(&n) || d_.size() < n) return false;
    s->assign(d_.substr(0, n));
    d_.remove_prefix(n);
    return true;
  }
  bool Byte(uint8_t* b) {
    if (d_.empty()) return false;
    *b = static_cast<uint8_t>(d_[0]);
    d_.remove_prefix(1);
    return true;
  }
  bool done() const { return d_.empty(); }

 private:
  std::string_view d_;
};

std::string SerializeFindings(const std::vector<Finding>& findings, const std::string& sha256, const std::string& path) {
  std::string out;
  if (findings.empty()) return out;  // clean: no bytes at all, the common case stays small
  PutString(out, sha256);
  Put<uint32_t>(out, static_cast<uint32_t>(findings.size()));
  for (const Finding& f : findings) {
    // Object paths are stored relative to the file so that a rename keeps them right.
    PutString(out, f.object.rfind(path, 0) == 0 ? std::string_view(f.object).substr(path.size()) : f.object);
    PutString(out, f.signature);
    out.push_back(static_cast<char>(f.kind));
    PutString(out, f.name_space);
    Put<uint32_t>(out, static_cast<uint32_t>(f.tags.size()));
    for (const auto& t : f.tags) PutString(out, t);
    Put<uint32_t>(out, static_cast<uint32_t>(f.meta.size()));
    for (const auto& [k, v] : f.meta) {
      PutString(out, k);
      PutString(out, v);
    }
    PutString(out, f.sha256);
  }
  return out;
}

bool ParseFindings(std::string_view blob, const std::string& path, std::vector<Finding>* out, std::string* sha256) {
  Reader r(blob);
  uint32_t n = 0;
  if (!r.Str(sha256) || !r.U32(&n) || n > blob.size()) return false;
  for (uint32_t i = 0; i < n; ++i) {
    Finding f;
    uint8_t kind = 0;
    uint32_t count = 0;
    std::string suffix;
    if (!r.Str(&suffix) || !r.Str(&f.signature) || !r.Byte(&kind) || !r.Str(&f.name_space) || !r.U32(&count) ||
        count > blob.size()) {
      return false;
    }
    f.object = path + suffix;
    f.kind = kind == 0 ? FindingKind::kHash : FindingKind::kYara;
    f.tags.resize(count);
    for (auto& t : f.tags) {
      if (!r.Str(&t)) return false;
    }
    if (!r.U32(&count) || count > blob.size()) return false;
    f.meta.resize(count);
    for (auto& [k, v] : f.meta) {
      if (!r.Str(&k) || !r.Str(&v)) return false;
    }
    if (!r.Str(&f.sha256)) return false;
    out->push_back(std::move(f));
  }
  return r.done();
}

std::string PaddedVersion(const std::string& v) {
  std::string out = v.substr(0, 64);
  out.resize(64, '\0');
  return out;
}

}  // namespace

FileKey FileKey::FromStat(const struct stat& st) {
  FileKey k;
  k.dev = static_cast<uint64_t>(st.st_dev);
  k.ino = static_cast<uint64_t>(st.st_ino);
  k.size = static_cast<uint64_t>(st.st_size);
  k.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  k.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return k;
}

size_t VerdictCache::KeyHash::operator()(const FileKey& k) const {
  uint64_t h = k.ino * 0x9E3779B97F4A7C15ull;
  h ^= (k.dev + 0x632BE59BD9B4E019ull) + (h << 6) + (h >> 2);
  h ^= (k.size * 0xC2B2AE3D27D4EB4Full) + (h << 6) + (h >> 2);
  h ^= static_cast<uint64_t>(k.mtime_ns) + (h << 6) + (h >> 2);
  h ^= static_cast<uint64_t>(k.ctime_ns) + (h << 6) + (h >> 2);
  return static_cast<size_t>(h);
}

VerdictCache::VerdictCache(std::string path, std::string signature_version, size_t max_entries)
    : path_(std::move(path)), version_(std::move(signature_version)), max_entries_(max_entries) {
  if (!path_.empty()) Load();
}

void VerdictCache::Load() {
  auto data = ReadFileToString(path_);
  if (!data.ok()) {
    load_note_ = data.status().code() == StatusCode::kNotFound ? "no cache file yet" : data.status().message();
    return;
  }
  const std::string& d = *data;
  if (d.size() < kHeaderSize + 32 || std::memcmp(d.data(), kMagic, 8) != 0) {
    load_note_ = path_ + ": not a verdict cache file, ignored";
    return;
  }
  if (Get<uint32_t>(d.data() + 8) != kFormat) {
    load_note_ = path_ + ": cache format changed, starting empty";
    return;
  }
  if (d.compare(16, 64, PaddedVersion(version_)) != 0) {
    load_note_ = "signatures changed since the cache was written, starting empty";
    return;
  }
  uint64_t count = Get<uint64_t>(d.data() + 80);
  std::string_view body(d.data(), d.size() - 32);
  if (Hasher::Of(body).bytes(DigestKind::kSha256) != std::string_view(d.data() + body.size(), 32)) {
    load_note_ = path_ + ": cache checksum mismatch, ignored";
    return;
  }
  std::unordered_map<FileKey, std::string, KeyHash> loaded;
  size_t pos = kHeaderSize;
  for (uint64_t i = 0; i < count; ++i) {
    if (body.size() - pos < kKeySize + 4) {
      load_note_ = path_ + ": truncated cache file, ignored";
      return;
    }
    const char* p = d.data() + pos;
    FileKey k;
    k.dev = Get<uint64_t>(p);
    k.ino = Get<uint64_t>(p + 8);
    k.size = Get<uint64_t>(p + 16);
    k.mtime_ns = Get<int64_t>(p + 24);
    k.ctime_ns = Get<int64_t>(p + 32);
    uint32_t n = Get<uint32_t>(p + 40);
    pos += kKeySize + 4;
    if (body.size() - pos < n) {
      load_note_ = path_ + ": truncated cache file, ignored";
      return;
    }
    if (loaded.size() < max_entries_) loaded.emplace(k, std::string(d.data() + pos, n));
    pos += n;
  }
  if (pos != body.size()) {
    load_note_ = path_ + ": trailing bytes in cache file, ignored";
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  entries_ = std::move(loaded);
  load_note_ = "loaded " + std::to_string(entries_.size()) + " entries";
}

std::optional<VerdictCache::Cached> VerdictCache::Lookup(const FileKey& key, const std::string& path) const {
  std::string blob;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    blob = it->second;
  }
  Cached c;
  if (!blob.empty() && !ParseFindings(blob, path, &c.findings, &c.sha256)) return std::nullopt;  // damaged: rescan
  return c;
}

void VerdictCache::Record(const FileKey& key, const ScanReport& report) {
  const bool complete = report.incomplete.empty() && report.error.empty() &&
                        (report.verdict == Verdict::kClean || report.verdict == Verdict::kFound);
  if (!complete) return;
  std::string blob = SerializeFindings(report.findings, report.sha256, report.path);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= max_entries_) return;  // bounded memory: new files simply go uncached
    entries_.emplace(key, std::move(blob));
    dirty_ = true;
  } else if (it->second != blob) {
    it->second = std::move(blob);
    dirty_ = true;
  }
}

void VerdictCache::Forget(const FileKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.erase(key) != 0) dirty_ = true;
}

size_t VerdictCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

Status VerdictCache::Save() {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (path_.empty() || !dirty_) return Status::Ok();
    out.append(kMagic, 8);
    Put<uint32_t>(out, kFormat);
    Put<uint32_t>(out, 0);
    out += PaddedVersion(version_);
    Put<uint64_t>(out, entries_.size());
    for (const auto& [k, blob] : entries_) {
      Put(out, k.dev);
      Put(out, k.ino);
      Put(out, k.size);
      Put(out, k.mtime_ns);
      Put(out, k.ctime_ns);
      PutString(out, blob);
    }
    dirty_ = false;
  }
  out.append(Hasher::Of(out).bytes(DigestKind::kSha256));
  Status s;
  if (auto slash = path_.rfind('/'); slash != std::string::npos && slash > 0) s = MakeDirs(path_.substr(0, slash), 0700);
  if (s.ok()) s = WriteFileAtomically(path_, out, 0600);
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ = true;
  }
  return s;
}

}  // namespace mamori::scanner
