#include "mamori/scanner/hash_db.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "mamori/common/file_util.h"

namespace mamori::scanner {

// One table per digest kind, digests stored back to back (`width` bytes each)
// and sorted; a 64K-bucket index on the first two bytes narrows each lookup to
// a few dozen entries for binary search.
struct HashDb::Table {
  size_t width = 0;
  std::string digests;             // width * n bytes
  std::vector<uint32_t> name_ids;  // n
  std::vector<uint64_t> sizes;     // n, or empty when no entry of this kind has a size
  bool sized = false;              // sizes is in use
  std::vector<uint32_t> bucket_start;  // 65537 after Finalize

  size_t count() const { return name_ids.size(); }
  std::string_view at(size_t i) const { return std::string_view(digests).substr(i * width, width); }
  unsigned Bucket(size_t i) const {
    auto* d = reinterpret_cast<const unsigned char*>(digests.data() + i * width);
    return static_cast<unsigned>(d[0]) << 8 | d[1];
  }
};

// Where the tables stood before a load, so that a failed load leaves nothing behind.
struct HashDb::Mark {
  std::array<size_t, kDigestKindCount> digests{}, names{}, sizes{};
  std::array<bool, kDigestKindCount> sized{};
  size_t arena = 0;
  uint32_t last_name = UINT32_MAX;
  bool any_unsized = false;
};

namespace {

constexpr uint32_t kUnnamed = UINT32_MAX;

// -1 for non-hex characters.
constexpr std::array<int8_t, 256> MakeHexTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<int8_t>(c - 'a' + 10);
  for (int c = 'A'; c <= 'F'; ++c) t[c] = static_cast<int8_t>(c - 'A' + 10);
  return t;
}
constexpr std::array<int8_t, 256> kHex = MakeHexTable();

struct ParsedLine {
  DigestKind kind;
  unsigned char digest[32];
  uint64_t size;
  std::string_view name;
};

bool ParseSize(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

Status ParseLine(std::string_view line, ParsedLine* out) {
  size_t c1 = line.find(':');
  std::string_view hex = line.substr(0, c1);
  std::string_view size_field, name;
  bool has_size = false;
  if (c1 != std::string_view::npos) {
    std::string_view rest = line.substr(c1 + 1);
    size_t c2 = rest.find(':');
    size_field = rest.substr(0, c2);
    has_size = true;
    if (c2 != std::string_view::npos) name = rest.substr(c2 + 1);
  }
  switch (hex.size()) {
    case 32: out->kind = DigestKind::kMd5; break;
    case 40: out->kind = DigestKind::kSha1; break;
    case 64: out->kind = DigestKind::kSha256; break;
    default:
      return InvalidArgumentError("digest must be 32 (md5), 40 (sha1) or 64 (sha256) hex digits, got " +
                                  std::to_string(hex.size()));
  }
  for (size_t i = 0; i < hex.size() / 2; ++i) {
    int hi = kHex[static_cast<unsigned char>(hex[2 * i])], lo = kHex[static_cast<unsigned char>(hex[2 * i + 1])];
    if ((hi | lo) < 0) return InvalidArgumentError("digest is not hexadecimal");
    out->digest[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  out->size = kAnySize;
  if (has_size && size_field != "*" && !size_field.empty() && !ParseSize(size_field, &out->size)) {
    return InvalidArgumentError("size must be a decimal number or '*', got '" + std::string(size_field) + "'");
  }
  if (name.find('\0') != std::string_view::npos) return InvalidArgumentError("name contains a NUL byte");
  out->name = name;
  return Status::Ok();
}

}  // namespace

// Feeds text in arbitrary chunks; lines may span chunks.
class HashDb::Loader {
 public:
  Loader(HashDb* db, std::string_view source) : db_(db), source_(source), mark_(db->Save()) {}

  Status Feed(std::string_view chunk) {
    if (!carry_.empty()) {
      size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        carry_.append(chunk);
        return Status::Ok();
      }
      carry_.append(chunk.substr(0, nl));
      chunk.remove_prefix(nl + 1);
      std::string line = std::move(carry_);
      carry_.clear();
      MAMORI_RETURN_IF_ERROR(Line(line));
    }
    for (;;) {
      size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) break;
      MAMORI_RETURN_IF_ERROR(Line(chunk.substr(0, nl)));
      chunk.remove_prefix(nl + 1);
    }
    carry_.assign(chunk);
    return Status::Ok();
  }

  Status Finish() {
    if (!carry_.empty()) {
      std::string line = std::move(carry_);
      carry_.clear();
      MAMORI_RETURN_IF_ERROR(Line(line));
    }
    return Status::Ok();
  }

  void Abort() { db_->Rollback(mark_); }

 private:
  Status Line(std::string_view line) {
    ++line_no_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') return Status::Ok();
    ParsedLine p;
    Status s = ParseLine(line, &p);
    if (!s.ok()) return s.WithContext(std::string(source_) + ":" + std::to_string(line_no_));
    db_->Add(p.kind, std::string_view(reinterpret_cast<const char*>(p.digest), DigestLength(p.kind)), p.size, p.name);
    return Status::Ok();
  }

  HashDb* db_;
  std::string_view source_;
  Mark mark_;
  std::string carry_;  // an unfinished line from the previous chunk
  size_t line_no_ = 0;
};

HashDb::HashDb() : tables_(kDigestKindCount) {
  for (int i = 0; i < kDigestKindCount; ++i) tables_[i].width = DigestLength(static_cast<DigestKind>(i));
}
HashDb::~HashDb() = default;
HashDb::HashDb(HashDb&&) noexcept = default;
HashDb& HashDb::operator=(HashDb&&) noexcept = default;

HashDb::Mark HashDb::Save() const {
  Mark m;
  for (int i = 0; i < kDigestKindCount; ++i) {
    m.digests[i] = tables_[i].digests.size();
    m.names[i] = tables_[i].name_ids.size();
    m.sizes[i] = tables_[i].sizes.size();
    m.sized[i] = tables_[i].sized;
  }
  m.arena = name_arena_.size();
  m.last_name = last_name_;
  m.any_unsized = any_unsized_;
  return m;
}

void HashDb::Rollback(const Mark& m) {
  for (int i = 0; i < kDigestKindCount; ++i) {
    tables_[i].digests.resize(m.digests[i]);
    tables_[i].name_ids.resize(m.names[i]);
    tables_[i].sizes.resize(m.sizes[i]);
    tables_[i].sized = m.sized[i];
  }
  name_arena_.resize(m.arena);
  last_name_ = m.last_name;
  any_unsized_ = m.any_unsized;
}

Status HashDb::LoadText(std::string_view text, std::string_view source) {
  Loader loader(this, source);
  Status s = loader.Feed(text);
  if (s.ok()) s = loader.Finish();
  if (!s.ok()) loader.Abort();
  return s;
}

Status HashDb::LoadFile(const std::string& path, std::string* content_sha256) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open " + path);
  // Reserving for the most entries the file could hold avoids the copies of
  // geometric growth; pages never written stay virtual and cost no memory.
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    for (Table& t : tables_) {
      const size_t max_entries = static_cast<size_t>(st.st_size) / (2 * t.width + 1);
      t.digests.reserve(t.digests.size() + max_entries * t.width);
      t.name_ids.reserve(t.name_ids.size() + max_entries);
    }
  }
  Loader loader(this, path);
  Hasher hasher;
  std::string buf(1u << 20, '\0');
  Status s;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      s = ErrnoError(errno, "read " + path);
      break;
    }
    if (n == 0) {
      s = loader.Finish();
      break;
    }
    std::string_view chunk(buf.data(), static_cast<size_t>(n));
    if (content_sha256 != nullptr) hasher.Update(chunk);
    s = loader.Feed(chunk);
    if (!s.ok()) break;
  }
  ::close(fd);
  if (!s.ok()) {
    loader.Abort();
    return s;
  }
  if (content_sha256 != nullptr) *content_sha256 = std::string(hasher.Finish().bytes(DigestKind::kSha256));
  return Status::Ok();
}

void HashDb::Add(DigestKind kind, std::string_view digest_bytes, uint64_t size, std::string_view name) {
  finalized_ = false;
  Table& t = tables_[static_cast<int>(kind)];
  t.digests.append(digest_bytes.substr(0, t.width));
  if (digest_bytes.size() < t.width) t.digests.append(t.width - digest_bytes.size(), '\0');
  if (name.empty()) {
    t.name_ids.push_back(kUnnamed);  // named from the digest at lookup: no text per entry
  } else {
    if (last_name_ == UINT32_MAX || std::string_view(name_arena_.c_str() + last_name_) != name) {
      last_name_ = static_cast<uint32_t>(name_arena_.size());
      name_arena_.append(name);
      name_arena_.push_back('\0');
    }
    t.name_ids.push_back(last_name_);
  }
  if (size != kAnySize && !t.sized) {
    t.sizes.assign(t.count() - 1, kAnySize);
    t.sized = true;
  }
  if (t.sized) t.sizes.push_back(size);
  if (size == kAnySize) any_unsized_ = true;
}

void HashDb::Finalize() {
  sizes_sorted_.clear();
  for (Table& t : tables_) {
    const size_t n = t.count();
    if (n == 0) {
      t.bucket_start.clear();  // Lookup checks count() first; an empty kind costs nothing
      continue;
    }
    // Counting sort on the 16-bit prefix, then a small sort inside each bucket:
    // far cheaper than one comparison sort over a million 32-byte keys.
    t.bucket_start.assign(65537, 0);
    for (size_t i = 0; i < n; ++i) ++t.bucket_start[t.Bucket(i) + 1];
    for (size_t b = 1; b < t.bucket_start.size(); ++b) t.bucket_start[b] += t.bucket_start[b - 1];
    std::vector<uint32_t> order(n);  // order[k] = index of the entry that belongs at k
    {
      std::vector<uint32_t> next(t.bucket_start.begin(), t.bucket_start.end() - 1);
      for (size_t i = 0; i < n; ++i) order[next[t.Bucket(i)]++] = static_cast<uint32_t>(i);
    }
    for (size_t b = 0; b + 1 < t.bucket_start.size(); ++b) {
      std::sort(order.begin() + t.bucket_start[b], order.begin() + t.bucket_start[b + 1], [&](uint32_t x, uint32_t y) {
        int c = std::memcmp(t.digests.data() + size_t{x} * t.width, t.digests.data() + size_t{y} * t.width, t.width);
        return c != 0 ? c < 0 : x < y;
      });
    }
    // Apply the permutation in place, cycle by cycle: no second copy of the
    // tables, so loading peaks at the size of the data itself.
    unsigned char tmp_digest[32];
    for (size_t start = 0; start < n; ++start) {
      if (order[start] == start) continue;
      std::memcpy(tmp_digest, t.digests.data() + start * t.width, t.width);
      const uint32_t tmp_name = t.name_ids[start];
      const uint64_t tmp_size = t.sized ? t.sizes[start] : 0;
      size_t k = start;
      while (order[k] != start) {
        const size_t from = order[k];
        std::memcpy(t.digests.data() + k * t.width, t.digests.data() + from * t.width, t.width);
        t.name_ids[k] = t.name_ids[from];
        if (t.sized) t.sizes[k] = t.sizes[from];
        order[k] = static_cast<uint32_t>(k);
        k = from;
      }
      std::memcpy(t.digests.data() + k * t.width, tmp_digest, t.width);
      t.name_ids[k] = tmp_name;
      if (t.sized) t.sizes[k] = tmp_size;
      order[k] = static_cast<uint32_t>(k);
    }
    for (uint64_t s : t.sizes) {
      if (s != kAnySize) sizes_sorted_.push_back(s);
    }
  }
  std::sort(sizes_sorted_.begin(), sizes_sorted_.end());
  sizes_sorted_.erase(std::unique(sizes_sorted_.begin(), sizes_sorted_.end()), sizes_sorted_.end());
  sizes_sorted_.shrink_to_fit();
  finalized_ = true;
}

std::optional<std::string> HashDb::Lookup(DigestKind kind, std::string_view digest_bytes, uint64_t file_size) const {
  const Table& t = tables_[static_cast<int>(kind)];
  if (!finalized_ || t.count() == 0 || digest_bytes.size() != t.width) return std::nullopt;
  auto* d = reinterpret_cast<const unsigned char*>(digest_bytes.data());
  size_t lo = t.bucket_start[d[0] << 8 | d[1]];
  size_t hi = t.bucket_start[(d[0] << 8 | d[1]) + 1];
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = std::memcmp(t.digests.data() + mid * t.width, digest_bytes.data(), t.width);
    if (c < 0) lo = mid + 1; else hi = mid;
  }
  // Several signatures may share a digest with different sizes: take the first that fits.
  for (size_t i = lo; i < t.count() && t.at(i) == digest_bytes; ++i) {
    uint64_t want = t.sized ? t.sizes[i] : kAnySize;
    if (want == kAnySize || want == file_size) {
      if (t.name_ids[i] == kUnnamed) return "Mamori.Hash." + HexEncode(digest_bytes.substr(0, 6));
      return std::string(name_arena_.c_str() + t.name_ids[i]);
    }
  }
  return std::nullopt;
}

DigestMask HashDb::kinds() const {
  DigestMask m = 0;
  for (int i = 0; i < kDigestKindCount; ++i) {
    if (tables_[i].count() > 0) m |= static_cast<DigestMask>(1u << i);
  }
  return m;
}

size_t HashDb::size() const {
  size_t n = 0;
  for (const Table& t : tables_) n += t.count();
  return n;
}

bool HashDb::all_sized() const { return size() > 0 && !any_unsized_; }

bool HashDb::MaySizeMatch(uint64_t file_size) const {
  if (!all_sized()) return true;
  return std::binary_search(sizes_sorted_.begin(), sizes_sorted_.end(), file_size);
}

size_t HashDb::MemoryBytes() const {
  // Bytes in use (reserved but untouched capacity is virtual and not counted).
  size_t b = sizes_sorted_.size() * sizeof(uint64_t) + name_arena_.size();
  for (const Table& t : tables_) {
    b += t.digests.size() + t.name_ids.size() * sizeof(uint32_t) + t.sizes.size() * sizeof(uint64_t) +
         t.bucket_start.size() * sizeof(uint32_t);
  }
  return b;
}

}  // namespace mamori::scanner
