#include "containers.h"

#include <archive.h>
#include <archive_entry.h>

#include <array>
#include <cstring>
#include <memory>

namespace mamori::scanner::internal {
namespace {

bool HasAt(std::string_view data, size_t offset, std::string_view magic) {
  return data.size() >= offset + magic.size() && data.compare(offset, magic.size(), magic) == 0;
}

void EnableArchiveFormats(archive* a) {
  // Explicit list instead of archive_read_support_format_all: the "mtree" and
  // "warc" bidders can claim ordinary text files.
  archive_read_support_format_zip(a);
  archive_read_support_format_7zip(a);
  archive_read_support_format_rar(a);
  archive_read_support_format_rar5(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_cpio(a);
  archive_read_support_format_cab(a);
  archive_read_support_format_iso9660(a);
  archive_read_support_format_ar(a);
  archive_read_support_format_xar(a);
  archive_read_support_format_lha(a);
}

// Explicit list instead of archive_read_support_filter_all: libarchive decodes
// lrzip, grzip and (without liblzo2) lzop by running an external program on
// the bytes, which a scanner must never do with attacker input. Those layers
// stay undecoded (scanned as bytes). A filter libarchive was built without
// (its support call answers ARCHIVE_WARN: "using external program") is left
// out the same way; which ones is probed once on a throwaway handle.
using FilterSupport = int (*)(archive*);
constexpr FilterSupport kLibraryFilters[] = {
    archive_read_support_filter_gzip, archive_read_support_filter_bzip2, archive_read_support_filter_compress,
    archive_read_support_filter_lzma, archive_read_support_filter_xz,    archive_read_support_filter_lzip,
    archive_read_support_filter_zstd, archive_read_support_filter_lz4,   archive_read_support_filter_uu,
    archive_read_support_filter_rpm,
};
constexpr size_t kFilterCount = sizeof kLibraryFilters / sizeof kLibraryFilters[0];

void EnableLibraryFilters(archive* a) {
  static const std::array<bool, kFilterCount> in_library = [] {
    std::array<bool, kFilterCount> ok{};
    for (size_t i = 0; i < kFilterCount; ++i) {
      archive* probe = archive_read_new();
      ok[i] = probe != nullptr && kLibraryFilters[i](probe) == ARCHIVE_OK;
      if (probe != nullptr) archive_read_free(probe);
    }
    return ok;
  }();
  for (size_t i = 0; i < kFilterCount; ++i) {
    if (in_library[i]) kLibraryFilters[i](a);
  }
}

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

// Name of the single member of a compressed stream: the object name without
// its compression suffix ("x.tar.gz" -> "x.tar"), else "data".
std::string StreamMemberName(const std::string& object) {
  std::string base = object.substr(object.find_last_of("!/") == std::string::npos ? 0 : object.find_last_of("!/") + 1);
  auto dot = base.rfind('.');
  if (dot == std::string::npos || dot == 0) return "data";
  return base.substr(0, dot);
}

}  // namespace

ContainerKind SniffContainer(std::string_view h) {
  if (HasAt(h, 0, "PK\x03\x04") || HasAt(h, 0, "PK\x05\x06") || HasAt(h, 0, "PK\x07\x08")) return ContainerKind::kArchive;
  if (HasAt(h, 0, std::string_view("7z\xBC\xAF\x27\x1C", 6))) return ContainerKind::kArchive;
  if (HasAt(h, 0, std::string_view("Rar!\x1A\x07", 6))) return ContainerKind::kArchive;
  if (HasAt(h, 257, "ustar")) return ContainerKind::kArchive;
  if (HasAt(h, 0, "070707") || HasAt(h, 0, "070701") || HasAt(h, 0, "070702")) return ContainerKind::kArchive;
  if (h.size() >= 2 && ((static_cast<unsigned char>(h[0]) == 0xC7 && static_cast<unsigned char>(h[1]) == 0x71) ||
                        (static_cast<unsigned char>(h[0]) == 0x71 && static_cast<unsigned char>(h[1]) == 0xC7))) {
    return ContainerKind::kArchive;  // binary cpio, either byte order
  }
  if (HasAt(h, 0, std::string_view("MSCF\0\0\0\0", 8))) return ContainerKind::kArchive;
  if (HasAt(h, 0x8001, "CD001") || HasAt(h, 0x8801, "CD001") || HasAt(h, 0x9001, "CD001")) return ContainerKind::kArchive;
  if (HasAt(h, 0, "!<arch>\n")) return ContainerKind::kArchive;
  if (HasAt(h, 0, "xar!")) return ContainerKind::kArchive;
  if (h.size() >= 7 && h[2] == '-' && h[3] == 'l' && (h[4] == 'h' || h[4] == 'z') && h[6] == '-') {
    return ContainerKind::kArchive;  // LHA/LZH header "-lh5-"
  }
  if (HasAt(h, 0, "\x1F\x8B") || HasAt(h, 0, "BZh") || HasAt(h, 0, std::string_view("\xFD" "7zXZ\0", 6)) ||
      HasAt(h, 0, "\x28\xB5\x2F\xFD") || HasAt(h, 0, "LZIP") || HasAt(h, 0, "\x1F\x9D")) {
    return ContainerKind::kCompressedStream;
  }
  // lzma_alone: properties byte 0x5D and a 64 MiB-or-smaller power-of-two dictionary.
  if (h.size() >= 13 && static_cast<unsigned char>(h[0]) == 0x5D && h[1] == 0 && h[2] == 0 &&
      (h[4] == 0 || h[4] == 1 || h[4] == 2 || h[4] == 4)) {
    return ContainerKind::kCompressedStream;
  }
  return ContainerKind::kNone;
}

void WalkContainer(const ContainerSource& source, ContainerKind kind, const std::string& object, Budget& budget,
                   const MemberFn& on_member) {
  std::unique_ptr<archive, ArchiveCloser> a(archive_read_new());
  if (!a) {
    budget.Incomplete("out-of-memory", object);
    return;
  }
  EnableArchiveFormats(a.get());
  EnableLibraryFilters(a.get());
  // A compressed stream that holds no archive is one member, the decompressed bytes.
  if (kind == ContainerKind::kCompressedStream) archive_read_support_format_raw(a.get());

  int rc = source.fd >= 0 ? archive_read_open_fd(a.get(), source.fd, 1 << 16)
                          : archive_read_open_memory(a.get(), source.data.data(), source.data.size());
  if (rc != ARCHIVE_OK) {
    const char* err = archive_error_string(a.get());
    budget.Incomplete(std::string("corrupt: ") + (err ? err : "unrecognized archive"), object);
    return;
  }
  const uint64_t compressed = source.size > 0 ? source.size : 1;
  uint64_t extracted_here = 0;
  uint64_t index = 0;
  std::string buf;
  const bool raw = kind == ContainerKind::kCompressedStream;

  for (;;) {
    archive_entry* entry = nullptr;
    rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc == ARCHIVE_RETRY) continue;
    if (rc < ARCHIVE_WARN) {
      const char* err = archive_error_string(a.get());
      budget.Incomplete(std::string("corrupt: ") + (err ? err : "bad header"), object);
      break;
    }
    ++index;
    if (budget.TimeUp()) {
      budget.Incomplete("time", object);
      budget.exhausted = true;
      break;
    }
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    const char* raw_name = archive_entry_pathname(entry);
    std::string name;
    if (raw && archive_format(a.get()) == ARCHIVE_FORMAT_RAW) {
      name = StreamMemberName(object);
    } else if (raw_name != nullptr && *raw_name != '\0') {
      name = raw_name;
    } else {
      name = "member-" + std::to_string(index);
    }
    const std::string member_path = object + "!" + name;

    if (++budget.members > budget.limits.max_members) {
      budget.Incomplete("member-count", object);
      budget.exhausted = true;
      break;
    }
    if (archive_entry_is_data_encrypted(entry)) {
      budget.Incomplete("encrypted", member_path);
      continue;
    }

    buf.clear();
    if (archive_entry_size_is_set(entry)) {
      auto want = static_cast<uint64_t>(archive_entry_size(entry));
      if (want <= budget.limits.max_member_size && want <= 64ull << 20) buf.reserve(want);
    }
    bool stop_walk = false;
    bool member_truncated = false;
    char chunk[1 << 16];
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), chunk, sizeof chunk);
      if (n == 0) break;
      if (n < 0) {
        if (n == ARCHIVE_RETRY) continue;
        const char* err = archive_error_string(a.get());
        bool encrypted = archive_read_has_encrypted_entries(a.get()) > 0;
        budget.Incomplete(encrypted ? std::string("encrypted")
                                    : std::string("corrupt: ") + (err ? err : "bad data"),
                          member_path);
        // A fatal error leaves the archive unusable; a member-level failure does not.
        if (n == ARCHIVE_FATAL) stop_walk = true;
        break;
      }
      const auto len = static_cast<uint64_t>(n);
      budget.extracted_bytes += len;
      extracted_here += len;
      if (budget.extracted_bytes > budget.limits.max_total_extracted) {
        budget.Incomplete("total-size", object);
        budget.exhausted = stop_walk = true;
        break;
      }
      if (extracted_here > budget.limits.ratio_floor_bytes && extracted_here / compressed > budget.limits.max_ratio) {
        budget.Incomplete("ratio", object);
        stop_walk = true;
        break;
      }
      if (budget.TimeUp()) {
        budget.Incomplete("time", member_path);
        budget.exhausted = stop_walk = true;
        break;
      }
      // Past the member-size limit we keep decoding (and discarding) rather
      // than let libarchive skip the rest: its skip decompresses without our
      // limits, which a compression bomb would turn into an endless loop.
      if (buf.size() + len > budget.limits.max_member_size) {
        buf.append(chunk, static_cast<size_t>(budget.limits.max_member_size - buf.size()));
        member_truncated = true;
        continue;
      }
      buf.append(chunk, static_cast<size_t>(n));
    }
    if (member_truncated) budget.Incomplete("member-size", member_path);
    // What was decoded is scanned even when a limit cut it short: a prefix can still match.
    if (!buf.empty() || !stop_walk) on_member(name, buf);
    if (stop_walk || budget.exhausted) break;
  }
}

}  // namespace mamori::scanner::internal
