// Test helpers: temporary directories, EICAR built at run time, and archives
// written with libarchive so that samples never live in the repository.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mamori/scanner/signature_set.h"

namespace mamori::testing {

// The EICAR test string, assembled at run time so this source never contains it.
std::string Eicar();

// Creates a fresh directory under /tmp and removes it (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `data` to path()/name (creating parent dirs) and returns the full path.
  std::string Write(const std::string& name, const std::string& data) const;

 private:
  std::string path_;
};

using Members = std::vector<std::pair<std::string, std::string>>;  // name, content

// Archive in memory. `format`: "zip", "zip64", "7zip", "tar", "cpio" (newc),
// "cpio-odc", "ar", "iso9660", "xar"; `filter`: "", "gzip", "bzip2", "xz", "zstd".
std::string MakeArchive(const std::string& format, const Members& members, const std::string& filter = "",
                        const std::string& zip_passphrase = "");
// A single compressed stream (raw format), e.g. MakeCompressed("gzip", data).
std::string MakeCompressed(const std::string& filter, const std::string& data);

// Runs `command` with /bin/sh and returns its exit code and standard output
// (append "2>&1" to the command to capture standard error too).
struct CommandResult {
  int exit_code = -1;
  std::string out;
};
CommandResult RunCommand(const std::string& command);

// A signature set with EICAR (YARA rule + hash), plus extra hash lines.
std::shared_ptr<const scanner::SignatureSet> TestSignatures(const std::vector<std::string>& extra_hash_lines = {});

}  // namespace mamori::testing
