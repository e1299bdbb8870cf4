#include "mamori/scanner/hash_db.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>

#include "mamori/common/file_util.h"

namespace mamori::scanner {

// One table per digest kind, digests stored back to back (`width` bytes each)
// and sorted; a 64K-bucket index on the first two bytes narrows each lookup to
// a few dozen entries for binary search.
struct HashDb::Table {
  size_t width = 0;
  std::string digests;            // width * n bytes
  std::vector<uint32_t> name_ids;  // n
  std::vector<uint64_t> sizes;     // n, or empty when no entry of this kind has a size
  bool sized = false;              // sizes is in use
  std::vector<uint32_t> bucket_start;  // 65537 after Finalize

  size_t count() const { return name_ids.size(); }
  std::string_view at(size_t i) const { return std::string_view(digests).substr(i * width, width); }
};

HashDb::HashDb() : tables_(kDigestKindCount) {
  for (int i = 0; i < kDigestKindCount; ++i) tables_[i].width = DigestLength(static_cast<DigestKind>(i));
}
HashDb::~HashDb() = default;
HashDb::HashDb(HashDb&&) noexcept = default;
HashDb& HashDb::operator=(HashDb&&) noexcept = default;

namespace {

constexpr uint32_t kUnnamed = UINT32_MAX;

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

int HexNibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
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
    int hi = HexNibble(hex[2 * i]), lo = HexNibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgumentError("digest is not hexadecimal");
    out->digest[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  out->size = kAnySize;
  if (has_size && size_field != "*" && !size_field.empty() && !ParseSize(size_field, &out->size)) {
    return InvalidArgumentError("size must be a decimal number or '*', got '" + std::string(size_field) + "'");
  }
  out->name = name;
  return Status::Ok();
}

}  // namespace

Status HashDb::LoadText(std::string_view text, std::string_view source) {
  // Entries go straight into the tables; on error the tables are cut back to
  // where they were, so a bad file leaves nothing behind.
  struct Mark {
    size_t digests, names, sizes;
    bool sized;
  };
  Mark marks[kDigestKindCount];
  for (int i = 0; i < kDigestKindCount; ++i) {
    marks[i] = {tables_[i].digests.size(), tables_[i].name_ids.size(), tables_[i].sizes.size(), tables_[i].sized};
  }
  const size_t names_mark = names_.size();
  const bool unsized_mark = any_unsized_;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    ParsedLine p;
    Status s = ParseLine(line, &p);
    if (!s.ok()) {
      for (int i = 0; i < kDigestKindCount; ++i) {
        tables_[i].digests.resize(marks[i].digests);
        tables_[i].name_ids.resize(marks[i].names);
        tables_[i].sizes.resize(marks[i].sizes);
        tables_[i].sized = marks[i].sized;
      }
      for (size_t n = names_mark; n < names_.size(); ++n) name_index_.erase(names_[n]);
      names_.resize(names_mark);
      any_unsized_ = unsized_mark;
      return s.WithContext(std::string(source) + ":" + std::to_string(line_no));
    }
    Add(p.kind, std::string_view(reinterpret_cast<const char*>(p.digest), DigestLength(p.kind)), p.size, p.name);
  }
  return Status::Ok();
}

Status HashDb::LoadFile(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return LoadText(*text, path);
}

void HashDb::Add(DigestKind kind, std::string_view digest_bytes, uint64_t size, std::string_view name) {
  finalized_ = false;
  Table& t = tables_[static_cast<int>(kind)];
  t.digests.append(digest_bytes.substr(0, t.width));
  if (digest_bytes.size() < t.width) t.digests.append(t.width - digest_bytes.size(), '\0');
  if (name.empty()) {
    t.name_ids.push_back(kUnnamed);  // named from the digest at lookup: no string per entry
  } else {
    // Names repeat a lot in feeds ("abuse.ch", a family name): intern them.
    auto [it, inserted] = name_index_.try_emplace(std::string(name), static_cast<uint32_t>(names_.size()));
    if (inserted) names_.emplace_back(name);
    t.name_ids.push_back(it->second);
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
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      int c = std::memcmp(t.digests.data() + a * t.width, t.digests.data() + b * t.width, t.width);
      if (c != 0) return c < 0;
      return a < b;
    });
    std::string digests(n * t.width, '\0');
    std::vector<uint32_t> name_ids(n);
    std::vector<uint64_t> sizes(t.sized ? n : 0);
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(digests.data() + i * t.width, t.digests.data() + order[i] * t.width, t.width);
      name_ids[i] = t.name_ids[order[i]];
      if (!sizes.empty()) sizes[i] = t.sizes[order[i]];
    }
    t.digests = std::move(digests);
    t.name_ids = std::move(name_ids);
    t.sizes = std::move(sizes);
    t.digests.shrink_to_fit();
    t.bucket_start.assign(65537, 0);
    for (size_t i = 0; i < n; ++i) {
      auto* d = reinterpret_cast<const unsigned char*>(t.digests.data() + i * t.width);
      ++t.bucket_start[(d[0] << 8 | d[1]) + 1];
    }
    for (size_t b = 1; b < t.bucket_start.size(); ++b) t.bucket_start[b] += t.bucket_start[b - 1];
    for (uint64_t s : t.sizes) {
      if (s != kAnySize) sizes_sorted_.push_back(s);
    }
  }
  std::sort(sizes_sorted_.begin(), sizes_sorted_.end());
  sizes_sorted_.erase(std::unique(sizes_sorted_.begin(), sizes_sorted_.end()), sizes_sorted_.end());
  sizes_sorted_.shrink_to_fit();
  name_index_ = {};
  finalized_ = true;
}

std::optional<std::string> HashDb::Lookup(DigestKind kind, std::string_view digest_bytes,
                                               uint64_t file_size) const {
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
    uint64_t want = t.sizes.empty() ? kAnySize : t.sizes[i];
    if (want == kAnySize || want == file_size) {
      if (t.name_ids[i] == kUnnamed) return "Mamori.Hash." + HexEncode(digest_bytes.substr(0, 6));
      return names_[t.name_ids[i]];
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
  size_t b = sizes_sorted_.capacity() * sizeof(uint64_t);
  for (const std::string& n : names_) b += sizeof(std::string) + (n.size() > 15 ? n.capacity() : 0);
  for (const Table& t : tables_) {
    b += t.digests.capacity() + t.name_ids.capacity() * sizeof(uint32_t) + t.sizes.capacity() * sizeof(uint64_t) +
         t.bucket_start.capacity() * sizeof(uint32_t);
  }
  return b;
}

}  // namespace mamori::scanner
