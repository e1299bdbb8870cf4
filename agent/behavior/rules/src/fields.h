// The Sigma view of a Mamori event: log-source categories, the fields each
// category offers, and EventView, which reads a field of one Event as text or
// number (docs/behavior-rules.md is the user-facing version of these tables).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mamori/behavior/event.h"

namespace mamori::behavior::rules::internal {

enum class Category : uint8_t {
  kProcessCreation,    // kExec
  kFileEvent,          // kFileCreate, kFileOpenWrite, kFileRename, kFileChmod, kFileChown
  kFileDelete,         // kFileUnlink
  kFileRename,         // kFileRename
  kFileChange,         // kFileChmod, kFileChown
  kNetworkConnection,  // kNetConnect, kNetAccept
  kProcessExit,        // kExit (Mamori)
  kPrivilegeChange,    // kSetUid, kSetGid (Mamori)
  kModuleLoad,         // kModuleLoad: kernel modules (Mamori)
  kProcessAccess,      // kPtrace (Mamori)
  kNetworkBind,        // kNetBind (Mamori)
};
inline constexpr int kCategoryCount = static_cast<int>(Category::kNetworkBind) + 1;
using CategoryMask = uint16_t;
constexpr CategoryMask MaskOf(Category c) { return static_cast<CategoryMask>(1u << static_cast<int>(c)); }

std::optional<Category> CategoryFromName(std::string_view name);
std::string_view CategoryName(Category c);
// The categories an event of type `t` belongs to (0 for kFork, kSensorDrops).
CategoryMask CategoriesOf(EventType t);

enum class FieldId : uint8_t {
  // Process context: every category.
  kImage,
  kCommandLine,
  kParentImage,
  kParentCommandLine,
  kUser,
  kParentUser,
  kCurrentDirectory,
  kProcessId,
  kParentProcessId,
  kHashes,  // "SHA256=<hex>" (Sysmon form), "" when unknown
  kSha256,
  kTty,
  kCgroup,
  kUid,
  kEuid,
  kGid,
  kEgid,
  kLogonId,  // the real uid (what Sysmon for Linux reports as LogonId)
  // Files.
  kTargetFilename,
  kSourceFilename,
  kAction,  // "create" | "write" | "rename" | "chmod" | "chown" | "delete" | "setuid" | "setgid"
  kMode,
  kFileMode,  // permission bits in octal as `stat -c %a` prints them: "755", "4755"
  kOwnerUid,
  kOwnerGid,
  // Network.
  kDestinationIp,
  kDestinationPort,
  kDestinationHostname,
  kSourceIp,
  kSourcePort,
  kInitiated,  // "true" | "false"
  kProtocol,
  // Mamori categories.
  kExitCode,
  kNewId,
  kModuleName,
  kTargetProcessId,
  kPtraceRequest,
};
inline constexpr int kFieldCount = static_cast<int>(FieldId::kPtraceRequest) + 1;

enum class FieldKind : uint8_t { kString, kNumber };

struct FieldInfo {
  std::string_view name;  // Sigma field name
  FieldKind kind;
  CategoryMask categories;  // where the field is available
};

const FieldInfo& GetFieldInfo(FieldId f);
// Exact (case-sensitive) Sigma field name.
std::optional<FieldId> FieldFromName(std::string_view name);
// Why `name` cannot be used in `category` (unknown field, Windows-only field,
// field of another category, wrong case). REQUIRES: the field is not usable.
std::string FieldRefusal(std::string_view name, Category category);
inline bool FieldAvailable(FieldId f, Category c) { return (GetFieldInfo(f).categories & MaskOf(c)) != 0; }

// Reads the Sigma fields of one event. Text conversions and lowercased copies
// are computed on first use and cached until the next Reset; buffers are
// reused, so matching allocates nothing once warm.
// Thread safety: not thread-safe (one per Engine).
class EventView {
 public:
  // REQUIRES: `e` outlives every use until the next Reset.
  void Reset(const Event& e) {
    e_ = &e;
    if (++gen_ == 0) {  // wrapped: invalidate every cache entry explicitly
      raw_gen_.fill(0);
      fold_gen_.fill(0);
      gen_ = 1;
    }
  }
  const Event& event() const { return *e_; }

  // The value as text (numbers in decimal). Valid until the next Reset.
  std::string_view Raw(FieldId f) {
    const int i = static_cast<int>(f);
    if (raw_gen_[i] != gen_) {
      raw_[i] = ComputeRaw(f);
      raw_gen_[i] = gen_;
    }
    return raw_[i];
  }
  // ASCII-lowercased Raw(f). Valid until the next Reset.
  std::string_view Folded(FieldId f) {
    const int i = static_cast<int>(f);
    if (fold_gen_[i] != gen_) {
      fold_[i] = ComputeFolded(f);
      fold_gen_[i] = gen_;
    }
    return fold_[i];
  }
  // REQUIRES: GetFieldInfo(f).kind == kNumber.
  int64_t Number(FieldId f) const;
  // Sigma `exists` / null: strings exist when non-empty, numbers always.
  bool Exists(FieldId f) { return GetFieldInfo(f).kind == FieldKind::kNumber || !Raw(f).empty(); }

 private:
  std::string_view ComputeRaw(FieldId f);
  std::string_view ComputeFolded(FieldId f);

  const Event* e_ = nullptr;
  uint32_t gen_ = 1;
  std::array<uint32_t, kFieldCount> raw_gen_{};
  std::array<uint32_t, kFieldCount> fold_gen_{};
  std::array<std::string_view, kFieldCount> raw_{};
  std::array<std::string_view, kFieldCount> fold_{};
  std::array<std::string, kFieldCount> raw_buf_;
  std::array<std::string, kFieldCount> fold_buf_;
};

// `s`, cut to `max` bytes with "..." appended when longer (rule text echoed
// in report messages).
inline std::string Abbreviate(std::string_view s, size_t max = 120) {
  return s.size() <= max ? std::string(s) : std::string(s.substr(0, max)) + "...";
}

// ASCII lowercase of one byte / a string.
inline char FoldByte(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }
std::string FoldAscii(std::string_view s);

}  // namespace mamori::behavior::rules::internal
