// SignatureHolder: the signature set in use, swapped atomically.
//
// Readers take Current() — a shared_ptr that keeps the set alive for as long
// as they scan with it — so scans in flight finish on the old set while new
// scans see the new one; no reader can ever see a half-built set. A new set is
// built (hashes loaded, YARA compiled) entirely off to the side, then
// installed with one pointer swap.
//
// Versions only go up: Install refuses a set whose bundle_version is not
// greater than the one in use (no downgrade, no replay), except over a set
// from plain files (bundle_version 0).
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>

#include "mamori/common/status.h"
#include "mamori/scanner/signature_set.h"

namespace mamori::scanner {

class SignatureHolder {
 public:
  explicit SignatureHolder(std::shared_ptr<const SignatureSet> initial = nullptr);

  std::shared_ptr<const SignatureSet> Current() const;

  // Installs `next` if its version is newer; otherwise FAILED_PRECONDITION
  // naming both versions, and the current set stays.
  Status Install(std::shared_ptr<const SignatureSet> next);

  // Runs `build` on a background thread and installs its result. The future
  // carries the build error or Install's verdict; the current set serves
  // scans throughout. Destroying the future waits for the build to finish, so
  // the holder must outlive the future.
  std::future<Status> InstallInBackground(std::function<Result<std::shared_ptr<const SignatureSet>>()> build);

  // Bundle version in use (0 when none or plain files).
  uint64_t version() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const SignatureSet> current_;  // guarded by mu_
};

}  // namespace mamori::scanner
