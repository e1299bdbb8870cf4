// `mamori scan`: standalone scan in this process (like clamscan).
#pragma once

#include <string>
#include <vector>

namespace mamori::cli {

// Runs `mamori scan ARGS...` (args exclude "mamori" and "scan").
// Returns the process exit code: 0 nothing found, 1 found, 2 error or
// incomplete (something could not be fully scanned), 64 usage error.
int RunScan(const std::vector<std::string>& args);

// Default signature directory: $MAMORI_SIGNATURES_DIR, else the installed
// set, else the source tree's signatures/default (developer builds).
std::string DefaultSignaturesDir();

}  // namespace mamori::cli
