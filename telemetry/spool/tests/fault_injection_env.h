// FaultInjectionEnv: a SpoolEnv over the real file system that fails chosen
// operations and can simulate a power cut (after leveldb's
// fault_injection_test): it remembers how much of every file it wrote has
// been fdatasync'ed and which files were created since the last directory
// fsync, and PowerCut() throws the rest away.
//
// Thread-safe (one mutex); the spool calls it from several threads.
#pragma once

#include <cerrno>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "env.h"

namespace mamori::telemetry::testing {

class FaultInjectionEnv final : public SpoolEnv {
 public:
  explicit FaultInjectionEnv(SpoolEnv* base = SpoolEnv::Default()) : base_(base) {}

  // The next `n` segment appends fail with `err` after writing the first
  // `partial` bytes of their data (a short write cut off by the error).
  void FailWrites(int n, int err = ENOSPC, size_t partial = 0);
  // The next `n` fdatasync / directory fsync calls fail with EIO.
  void FailSyncs(int n);
  // The next `n` truncations fail with EIO.
  void FailTruncates(int n);
  // The next `n` atomic (state file) writes fail with EIO.
  void FailStateWrites(int n);
  // The next `n` segment creations fail with ENOSPC.
  void FailCreates(int n);
  // From now on every operation fails with EIO and touches nothing: the
  // machine is off. The spool can then be destroyed without committing.
  void Crash();
  // After Crash(): cuts every file written through this env back to its last
  // synced size and removes files created since the last directory fsync.
  void PowerCut();

  int syncs() const;

  Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path, bool create) override;
  Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Status MakeDirs(const std::string& dir) override;
  Result<std::string> ReadFile(const std::string& path) override;
  Status WriteFileAtomically(const std::string& path, std::string_view data) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

 private:
  friend class FaultFile;
  struct FileState {
    uint64_t size = 0;
    uint64_t synced = 0;
  };
  Status Crashed() const { return Status(StatusCode::kDataLoss, "fault injection: machine is off"); }

  SpoolEnv* const base_;
  mutable std::mutex mu_;
  int fail_writes_ = 0;
  int write_errno_ = ENOSPC;
  size_t write_partial_ = 0;
  int fail_syncs_ = 0;
  int fail_truncates_ = 0;
  int fail_state_writes_ = 0;
  int fail_creates_ = 0;
  bool crashed_ = false;
  int syncs_ = 0;
  std::map<std::string, FileState> files_;
  std::set<std::string> created_unsynced_;
};

}  // namespace mamori::telemetry::testing
