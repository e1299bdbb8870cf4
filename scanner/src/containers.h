// Internal: container detection and member walk over libarchive, in memory or
// streaming from a file descriptor. Nothing is extracted to disk.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "budget.h"

namespace mamori::scanner::internal {

enum class ContainerKind {
  kNone,
  kArchive,           // zip, 7z, rar/rar5, tar, cpio, cab, iso9660, ar/deb, xar, lha
  kCompressedStream,  // gzip, bzip2, xz, zstd, lzma, lzip, compress: maybe a tar inside
};

// Looks at magic bytes only (`head` = the first 64 KiB or the whole object).
ContainerKind SniffContainer(std::string_view head);

// Where the container bytes come from: memory, or a regular file read
// sequentially through `fd` (large top-level files).
struct ContainerSource {
  std::string_view data;
  int fd = -1;
  uint64_t size = 0;  // compressed size, for the ratio limit
};

// Called for each regular member with its decoded bytes (valid only during the
// call). `name` is the member path inside the container.
using MemberFn = std::function<void(const std::string& name, std::string_view data)>;

// Walks the members of the container at `object` (its display path, used for
// incomplete reasons and for naming the single member of a compressed stream),
// accounting every decoded byte and member in `budget`. Limits, encryption and
// corruption are recorded in budget.incomplete; the walk never fails hard.
void WalkContainer(const ContainerSource& source, ContainerKind kind, const std::string& object,
                   Budget& budget, const MemberFn& on_member);

}  // namespace mamori::scanner::internal
