// HashDb: in-memory set of known-bad digests (MD5, SHA-1, SHA-256), each with
// an optional file size and a detection name.
//
// Text format (one signature a line; '#' starts a comment line; blank lines ignored),
// compatible with ClamAV .hdb/.hsb lines and with plain digest lists:
//     <hex digest>[:<size>|*][:<name>]
// The digest kind follows from the hex length (32 md5, 40 sha1, 64 sha256).
// A line without name is named "Mamori.Hash.<first 12 hex digits>".
//
// Memory: 32 bytes per SHA-256 entry + 4 (name id) + 8 only when some entry of
// that kind carries a size, + the name text (runs of one name stored once).
// 1M unnamed SHA-256 entries: ~36 MB.
//
// Thread safety: building (Add*/Load*/Finalize) is single-threaded; after
// Finalize() the object is immutable and Lookup() may be called concurrently.
// Share it as std::shared_ptr<const HashDb>.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/scanner/hasher.h"

namespace mamori::scanner {

inline constexpr uint64_t kAnySize = UINT64_MAX;

class HashDb {
 public:
  HashDb();
  ~HashDb();
  HashDb(HashDb&&) noexcept;
  HashDb& operator=(HashDb&&) noexcept;

  // Adds every line of `text`; `source` names the file in errors ("file:line: ...").
  // On error nothing from `text` is added.
  Status LoadText(std::string_view text, std::string_view source);
  // Streams the file (it is never held whole in memory). When
  // `content_sha256` is given it receives the raw SHA-256 of the file bytes.
  Status LoadFile(const std::string& path, std::string* content_sha256 = nullptr);
  void Add(DigestKind kind, std::string_view digest_bytes, uint64_t size, std::string_view name);

  // Sorts and indexes. REQUIRES: called once after the last Add/Load, before Lookup.
  void Finalize();

  // Detection name for this digest (and size, when the signature has one), or nullopt.
  std::optional<std::string> Lookup(DigestKind kind, std::string_view digest_bytes,
                                         uint64_t file_size) const;

  // Digest kinds that have at least one entry: the scanner computes only these (plus SHA-256).
  DigestMask kinds() const;
  size_t size() const;
  // True when every entry carries a size: files whose size matches no entry
  // need no hashing for lookup (ClamAV .hsb idea).
  bool all_sized() const;
  bool MaySizeMatch(uint64_t file_size) const;
  size_t MemoryBytes() const;

 private:
  struct Table;
  std::vector<Table> tables_;  // indexed by DigestKind
  class Loader;
  struct Mark;
  Mark Save() const;
  void Rollback(const Mark& m);

  // Names, NUL-terminated, back to back; an entry's name id is its offset.
  // Runs of one name (typical of feeds) are stored once.
  std::string name_arena_;
  uint32_t last_name_ = UINT32_MAX;
  std::vector<uint64_t> sizes_sorted_;  // distinct sizes of sized entries
  bool any_unsized_ = false;
  bool finalized_ = false;
};

}  // namespace mamori::scanner
