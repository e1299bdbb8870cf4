// Small file utilities shared by components. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mamori/common/status.h"

namespace mamori {

// Reads the whole file. Fails with NOT_FOUND / PERMISSION_DENIED / ... naming the path.
Result<std::string> ReadFileToString(const std::string& path);

// Writes `data` to `path` atomically: a temporary file in the same directory,
// fsync, rename over `path`, fsync of the directory. Either the old or the new
// content is visible after a crash, never a mix. `mode` applies to the new file.
Status WriteFileAtomically(const std::string& path, std::string_view data, unsigned mode = 0600);

// Creates `path` and missing parents with `mode` (like mkdir -p).
Status MakeDirs(const std::string& path, unsigned mode = 0755);

// Lowercase hex of `data`.
std::string HexEncode(std::string_view data);

// Parses lowercase/uppercase hex into bytes; false on odd length or non-hex digit.
bool HexDecode(std::string_view hex, std::string* out);

}  // namespace mamori
