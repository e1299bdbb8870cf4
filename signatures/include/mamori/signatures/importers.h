// Importers from existing signature formats into Mamori's hash DB (.mhdb) and
// allow-list (.allow) formats. Every input line is either taken or skipped
// with a reason naming file and line — never dropped silently.
//
// Thread safety: free functions, no shared state.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::signatures {

struct ImportSkip {
  std::string where;   // "file:line"
  std::string reason;
};

struct ImportResult {
  std::string hashes;  // .mhdb text
  std::string allow;   // .allow text
  size_t taken_hashes = 0;
  size_t taken_allow = 0;
  std::vector<ImportSkip> skipped;
};

// ClamAV hash databases: .hdb/.hdu (MD5:size:name[:flevel]), .hsb/.hsu
// (SHA-1 or SHA-256:size|*:name[:flevel]) become hash signatures; .fp/.sfp
// entries become allow-list entries (SHA-256 only: MD5/SHA-1 allow entries
// are skipped with that reason). Unknown file types are an error.
Status ImportClamav(const std::vector<std::string>& files, ImportResult* out);

// A SHA-256 feed: one digest per line (extra columns such as sha256sum's file
// name ignored, '#' comments), or CSV with a header row naming the column
// (default: the first column whose name contains "sha256"; abuse.ch dumps
// carry the header in a '#' comment line, which is recognized). `name` is
// the detection name given to every entry.
Status ImportSha256List(const std::string& file, const std::string& name, const std::string& column,
                        ImportResult* out);

}  // namespace mamori::signatures
