#include "mamori/scanner/verdict_cache.h"

#include <cstring>

#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"

namespace mamori::scanner {
namespace {

// File layout (little-endian, format version 1; bump kFormat on any change):
//   "MAMORIVC" | u32 format | u32 reserved | 64 bytes signature version (hex) |
//   u64 count | count * 40-byte keys (dev, ino, size, mtime_ns, ctime_ns) |
//   32-byte SHA-256 of everything before it.
constexpr char kMagic[8] = {'M', 'A', 'M', 'O', 'R', 'I', 'V', 'C'};
constexpr uint32_t kFormat = 1;
constexpr size_t kHeaderSize = 8 + 4 + 4 + 64 + 8;
constexpr size_t kEntrySize = 40;

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
  if (count > (d.size() - kHeaderSize - 32) / kEntrySize || kHeaderSize + count * kEntrySize + 32 != d.size()) {
    load_note_ = path_ + ": truncated cache file, ignored";
    return;
  }
  std::string_view body(d.data(), d.size() - 32);
  if (Hasher::Of(body).bytes(DigestKind::kSha256) != std::string_view(d.data() + body.size(), 32)) {
    load_note_ = path_ + ": cache checksum mismatch, ignored";
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  clean_.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count && clean_.size() < max_entries_; ++i) {
    const char* p = d.data() + kHeaderSize + i * kEntrySize;
    FileKey k;
    k.dev = Get<uint64_t>(p);
    k.ino = Get<uint64_t>(p + 8);
    k.size = Get<uint64_t>(p + 16);
    k.mtime_ns = Get<int64_t>(p + 24);
    k.ctime_ns = Get<int64_t>(p + 32);
    clean_.insert(k);
  }
  load_note_ = "loaded " + std::to_string(clean_.size()) + " entries";
}

bool VerdictCache::IsKnownClean(const FileKey& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return clean_.count(key) != 0;
}

void VerdictCache::RecordClean(const FileKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (clean_.size() >= max_entries_) return;  // bounded memory: new files simply go uncached
  if (clean_.insert(key).second) dirty_ = true;
}

void VerdictCache::Forget(const FileKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (clean_.erase(key) != 0) dirty_ = true;
}

size_t VerdictCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clean_.size();
}

Status VerdictCache::Save() {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (path_.empty() || !dirty_) return Status::Ok();
    out.reserve(kHeaderSize + clean_.size() * kEntrySize + 32);
    out.append(kMagic, 8);
    Put<uint32_t>(out, kFormat);
    Put<uint32_t>(out, 0);
    out += PaddedVersion(version_);
    Put<uint64_t>(out, clean_.size());
    for (const FileKey& k : clean_) {
      Put(out, k.dev);
      Put(out, k.ino);
      Put(out, k.size);
      Put(out, k.mtime_ns);
      Put(out, k.ctime_ns);
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
