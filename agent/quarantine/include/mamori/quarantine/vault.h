// Quarantine vault: detected files are moved into an encrypted store from
// which they can be restored byte for byte, with owner, mode and timestamps.
//
// Layout of the vault directory (created 0700):
//   vault.key           32 random bytes, 0600, created at first open
//   <id>.data           "MQV1" | 12-byte nonce | AES-256-GCM ciphertext | 16-byte tag
//   <id>.rec            the record (text, see record format in docs/quarantine.md)
// A quarantined file can neither run nor be opened by accident: its bytes are
// encrypted at rest.
//
// Crash safety — the file is always either in place or restorable:
//   quarantine: write + fsync <id>.data, commit <id>.rec (state "pending"),
//               unlink the original (only if it is still the inode we read),
//               commit the record as "quarantined".
//   restore:    commit the record as "restoring", write + fsync a temporary
//               file beside the target, link it into place (never over an
//               existing file unless forced), then remove the vault entry.
// Open() reconciles whatever a crash left half-done.
//
// Thread safety: a Vault serializes its operations internally (one mutex);
// one process should own a vault directory.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::quarantine {

struct Record {
  std::string id;             // 32 hex digits
  std::string state;          // "pending", "quarantined", "restoring"
  std::string original_path;
  uint64_t size = 0;
  uint32_t uid = 0, gid = 0, mode = 0;
  int64_t atime_ns = 0, mtime_ns = 0;
  uint64_t dev = 0, ino = 0;  // of the original, to never unlink a replacement
  std::string sha256;         // hex, of the original bytes
  std::string detection;
  std::string signature_version;
  int64_t quarantined_at = 0; // unix seconds
  std::string restore_target; // while restoring
};

// Steps of an operation, for fault injection in tests (the hook may end the
// process to simulate a crash right after that step).
enum class Step {
  kDataWritten,       // quarantine: <id>.data durable
  kRecordPending,     // quarantine: record committed as pending
  kOriginalUnlinked,  // quarantine: original removed
  kRecordRestoring,   // restore: record committed as restoring
  kTargetWritten,     // restore: temporary file durable beside the target
  kTargetLinked,      // restore: target in place
};

struct VaultOptions {
  uint64_t quota_bytes = 1ull << 30;          // encrypted bytes kept; oldest purged first
  int64_t retention_seconds = 30 * 24 * 3600; // items older than this are purged
  std::function<void(Step)> after_step;       // test seam: called after each step
};

struct RestoreOptions {
  std::string to;              // empty = the original path
  bool force = false;          // replace an existing file at the target
  std::string allow_list_path; // if set, the file's SHA-256 is appended there ("sha256:<hex>")
};

class Vault {
 public:
  // Opens (creating if needed) the vault at `dir` and reconciles half-finished
  // operations. Refuses a vault directory that is group/world accessible or a
  // key file that is not 0600.
  static Result<std::unique_ptr<Vault>> Open(const std::string& dir, VaultOptions options = {});

  // Moves the file at `path` into the vault. When `fd` >= 0 it is the
  // descriptor the scanner read (the bytes quarantined are exactly the bytes
  // scanned); the path must still name that inode or nothing is unlinked and
  // FAILED_PRECONDITION is returned with the vault copy removed. NOT_FOUND
  // when the path is gone meanwhile (no copy is kept: no silent duplicates).
  Result<Record> Quarantine(const std::string& path, int fd, const std::string& detection,
                            const std::string& signature_version);

  // Decrypts, verifies SHA-256, and recreates the file with owner, mode and
  // timestamps. Every component of the target's directory is opened with
  // O_NOFOLLOW: a symlink anywhere in the target path refuses the restore.
  Result<Record> Restore(const std::string& id, const RestoreOptions& options);

  Status Delete(const std::string& id);
  Result<std::vector<Record>> List() const;
  // Removes items past retention, then oldest first until under quota.
  Result<size_t> Purge(int64_t now_unix);

  const std::string& dir() const { return dir_; }

 private:
  Vault(std::string dir, VaultOptions options, std::string key);
  Status Reconcile();
  void Hook(Step s) const {
    if (options_.after_step) options_.after_step(s);
  }

  // Constant after construction.
  const std::string dir_;
  const VaultOptions options_;
  const std::string key_;  // 32 bytes

  mutable std::mutex mu_;  // serializes operations on the directory
};

// Record text form (stable, versioned "format=1" first line).
std::string SerializeRecord(const Record& r);
Result<Record> ParseRecord(std::string_view text, std::string_view source);

}  // namespace mamori::quarantine
