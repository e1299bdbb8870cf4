// A loaded, immutable set of signatures: hash DB + compiled YARA rules, with a
// version string that changes whenever any of the content changes (verdict
// caches key on it). Share as std::shared_ptr<const SignatureSet>; swap a new
// one in atomically while scans in flight finish on the old one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/scanner/hash_db.h"
#include "mamori/scanner/yara_engine.h"

namespace mamori::scanner {

struct SignatureSet {
  HashDb hashes;                              // finalized
  std::shared_ptr<const YaraRules> yara;      // null when no rules
  // Hex SHA-256 over the engine format and every loaded file (name + content).
  std::string version;
  std::vector<std::string> files;             // what was loaded, for `status`/logs
};

// Loads a signature directory recursively: *.mhdb, *.hdb, *.hsb, *.hsh (hash
// lines, see hash_db.h) and *.yar, *.yara (YARA sources, namespace = file stem).
// Unknown file types are ignored. Any error refuses the whole set.
Result<std::shared_ptr<const SignatureSet>> LoadSignatureDir(const std::string& dir);

// Same over explicit files and/or directories.
Result<std::shared_ptr<const SignatureSet>> LoadSignatures(const std::vector<std::string>& paths);

}  // namespace mamori::scanner
