// Scanner: one scan path for files, buffers, archive members and mail parts.
//
// Every object (a file, or a member inside it at any depth) is hashed (one
// pass: all digest kinds the signatures use), looked up in the hash DB,
// YARA-scanned, and — when it is a container (libarchive formats, single-stream
// compressors) or mail (.eml, mbox) — opened in memory and its members go
// through the same path. Nothing is extracted to disk. Object paths name the
// place inside: "a.zip!dir/b.tar.gz!evil.elf".
//
// Thread safety: a Scanner is a per-thread context (it owns a YARA scanner and
// reusable buffers); create one per worker over the same shared SignatureSet.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/scanner/limits.h"
#include "mamori/scanner/signature_set.h"

namespace mamori::scanner {

class ParserPool;

enum class FindingKind { kHash, kYara };

struct Finding {
  std::string object;      // "a.zip!dir/x" (the top-level path for the file itself)
  std::string signature;   // detection name (hash signature name or YARA rule)
  FindingKind kind = FindingKind::kHash;
  std::string name_space;  // YARA namespace, empty for hashes
  std::vector<std::string> tags;
  std::vector<std::pair<std::string, std::string>> meta;
  std::string sha256;      // hex digest of the object that matched
};

enum class Verdict { kClean, kFound, kIncomplete, kError };
std::string_view VerdictName(Verdict v);  // "clean", "found", "incomplete", "error"

struct ScanReport {
  std::string path;
  uint64_t size = 0;          // bytes of the top-level object
  Verdict verdict = Verdict::kClean;
  std::vector<Finding> findings;
  // Why the object could not be fully scanned: "depth", "member-size",
  // "total-size", "member-count", "ratio", "time", "encrypted", "corrupt", ...
  // each with the object path: "depth (a.zip!b.zip!...)".
  std::vector<std::string> incomplete;
  std::string error;          // set when verdict == kError
  std::string sha256;         // hex, of the top-level object (empty if not hashed)
  bool from_cache = false;
  bool allowed = false;       // the allow-list covers this file: not scanned, never reported
};

struct ScanOptions {
  ScanLimits limits;
  // Skip hashing for lookup when every hash signature carries a size and this
  // file's size matches none (SHA-256 is then not reported). Measured in bench/.
  bool size_prefilter = true;
  // Open containers (archives, compressed streams) and mail. When off, such
  // objects are scanned as plain bytes only and not reported incomplete for it
  // (the user chose so, like clamscan --scan-archive=no).
  bool open_containers = true;
  bool open_mail = true;
  // When set, containers and mail are opened in the pool's confined worker
  // processes instead of this one (parser_pool.h); null: in process.
  std::shared_ptr<ParserPool> parser_pool;
};

class Scanner {
 public:
  static Result<std::unique_ptr<Scanner>> Create(std::shared_ptr<const SignatureSet> signatures,
                                                 ScanOptions options = {});
  ~Scanner();
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  // Opens `path` (not following a final symlink unless `follow_symlink`),
  // refuses non-regular files without blocking on them, and scans it.
  ScanReport ScanFile(const std::string& path, bool follow_symlink = true);
  // Scans an open regular file; `st` is its fstat. The descriptor is not closed.
  ScanReport ScanFd(int fd, const struct stat& st, const std::string& path);
  // Scans bytes in memory, `name` is the object path reported.
  ScanReport ScanBuffer(std::string_view data, const std::string& name);

  const SignatureSet& signatures() const { return *signatures_; }

 private:
  class Impl;
  Scanner() = default;
  std::shared_ptr<const SignatureSet> signatures_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::scanner
