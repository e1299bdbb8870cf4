// A loaded, immutable set of signatures: hash DB + compiled YARA rules +
// allow-list, with a version string that changes whenever any of the content
// changes (verdict caches key on it). Share as std::shared_ptr<const
// SignatureSet>; swap a new one in (SignatureHolder) while scans in flight
// finish on the old one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/scanner/allow_list.h"
#include "mamori/scanner/hash_db.h"
#include "mamori/scanner/yara_engine.h"

namespace mamori::scanner {

struct SignatureSet {
  HashDb hashes;                              // finalized
  std::shared_ptr<const YaraRules> yara;      // null when no rules
  AllowList allow;
  // Hex SHA-256 over the engine format, the bundle version and every loaded
  // part (name + content).
  std::string version;
  uint64_t bundle_version = 0;                // 0 for sets loaded from plain files
  std::string publisher_key_id;               // empty for plain files
  std::vector<std::string> files;             // what was loaded, for `status`/logs
};

// File types by extension: *.mhdb, *.hdb, *.hsb, *.hsh (hash lines, see
// hash_db.h); *.yar, *.yara (YARA sources, namespace = file stem); *.allow
// (allow-list, see allow_list.h). Others are not signatures.
enum class SignatureFileType { kNone, kHashes, kYara, kAllow };
SignatureFileType SignatureFileTypeOf(const std::string& name);

// Loads signature directories (recursively) and/or files. Unknown file types
// in directories are ignored; named files must be of a known type. Any error
// refuses the whole set.
Result<std::shared_ptr<const SignatureSet>> LoadSignatures(const std::vector<std::string>& paths);
Result<std::shared_ptr<const SignatureSet>> LoadSignatureDir(const std::string& dir);

// Builds a set from parts already in memory (a verified bundle). `name` gives
// the type (as above) and is used in error messages.
struct SignaturePart {
  std::string name;
  std::string content;
};
Result<std::shared_ptr<const SignatureSet>> BuildSignatureSet(const std::vector<SignaturePart>& parts,
                                                             uint64_t bundle_version,
                                                             const std::string& publisher_key_id);

}  // namespace mamori::scanner
