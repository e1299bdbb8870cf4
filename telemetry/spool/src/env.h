// SpoolEnv: every file-system operation the spool performs, behind one
// interface so tests can inject failures (failed or partial writes, failed
// fdatasync, a simulated power cut that drops unsynced bytes) the way
// leveldb's fault_injection_test does. Production code passes nothing and gets
// SpoolEnv::Default() (posix/env_posix.cc). Not part of the public API: only
// the spool and its tests include this header.
//
// Thread safety: an Env is used from several threads at once and must be
// thread-safe. A WritableFile is used by one thread at a time except that
// Sync() may run concurrently with Append() (fdatasync while appending is
// fine on POSIX). A ReadableFile is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::telemetry {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` at the end of the file. On error a prefix of `data`
  // may have reached the file; the caller truncates it away.
  virtual Status Append(std::string_view data) = 0;
  // Cuts the file to `size` bytes (appends continue from there).
  virtual Status Truncate(uint64_t size) = 0;
  // fdatasync: the bytes appended so far survive a power cut.
  virtual Status Sync() = 0;
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `n` bytes at `offset` into `buf`; returns the count (short at EOF).
  virtual Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) = 0;
  virtual Result<uint64_t> Size() = 0;
};

// Held while the spool is open; releasing it (destruction) unlocks.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class SpoolEnv {
 public:
  virtual ~SpoolEnv() = default;

  // The real file system. Never null; lives for the whole process.
  static SpoolEnv* Default();

  // Opens `path` for appending. With `create` the file must not exist yet
  // (O_EXCL); without, it must exist.
  virtual Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path, bool create) = 0;
  virtual Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) = 0;
  // Names of the entries of `dir` (no "." or "..").
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // fsync of the directory: creations and removals in it survive a power cut.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status MakeDirs(const std::string& dir) = 0;
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Old or new content after a crash, never a mix (see WriteFileAtomically).
  virtual Status WriteFileAtomically(const std::string& path, std::string_view data) = 0;
  // An exclusive advisory lock on `path` (created if missing). kUnavailable
  // when another process holds it.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

}  // namespace mamori::telemetry
