#include "fault_injection_env.h"

#include <unistd.h>

namespace mamori::telemetry::testing {

class FaultFile final : public WritableFile {
 public:
  FaultFile(FaultInjectionEnv* env, std::string path, std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}

  Status Append(std::string_view data) override {
    std::lock_guard lk(env_->mu_);
    if (env_->crashed_) return env_->Crashed();
    if (env_->fail_writes_ > 0) {
      --env_->fail_writes_;
      std::string_view prefix = data.substr(0, std::min(data.size(), env_->write_partial_));
      if (!prefix.empty() && base_->Append(prefix).ok()) env_->files_[path_].size += prefix.size();
      return ErrnoError(env_->write_errno_, "write " + path_ + " (injected)");
    }
    Status s = base_->Append(data);
    if (s.ok()) env_->files_[path_].size += data.size();
    return s;
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard lk(env_->mu_);
    if (env_->crashed_) return env_->Crashed();
    if (env_->fail_truncates_ > 0) {
      --env_->fail_truncates_;
      return ErrnoError(EIO, "truncate " + path_ + " (injected)");
    }
    Status s = base_->Truncate(size);
    if (s.ok()) {
      auto& f = env_->files_[path_];
      f.size = size;
      f.synced = std::min(f.synced, size);
    }
    return s;
  }

  Status Sync() override {
    uint64_t size;
    {
      std::lock_guard lk(env_->mu_);
      if (env_->crashed_) return env_->Crashed();
      ++env_->syncs_;
      if (env_->fail_syncs_ > 0) {
        --env_->fail_syncs_;
        return ErrnoError(EIO, "fdatasync " + path_ + " (injected)");
      }
      size = env_->files_[path_].size;  // what is in the file before this sync
    }
    Status s = base_->Sync();
    std::lock_guard lk(env_->mu_);
    if (s.ok()) env_->files_[path_].synced = std::max(env_->files_[path_].synced, size);
    return s;
  }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
  std::unique_ptr<WritableFile> base_;
};

void FaultInjectionEnv::FailWrites(int n, int err, size_t partial) {
  std::lock_guard lk(mu_);
  fail_writes_ = n;
  write_errno_ = err;
  write_partial_ = partial;
}
void FaultInjectionEnv::FailSyncs(int n) {
  std::lock_guard lk(mu_);
  fail_syncs_ = n;
}
void FaultInjectionEnv::FailTruncates(int n) {
  std::lock_guard lk(mu_);
  fail_truncates_ = n;
}
void FaultInjectionEnv::FailStateWrites(int n) {
  std::lock_guard lk(mu_);
  fail_state_writes_ = n;
}
void FaultInjectionEnv::FailCreates(int n) {
  std::lock_guard lk(mu_);
  fail_creates_ = n;
}
void FaultInjectionEnv::Crash() {
  std::lock_guard lk(mu_);
  crashed_ = true;
}
int FaultInjectionEnv::syncs() const {
  std::lock_guard lk(mu_);
  return syncs_;
}

void FaultInjectionEnv::PowerCut() {
  std::lock_guard lk(mu_);
  for (const std::string& path : created_unsynced_) {
    ::unlink(path.c_str());
    files_.erase(path);
  }
  created_unsynced_.clear();
  for (auto& [path, f] : files_) {
    if (f.synced < f.size) {
      if (::truncate(path.c_str(), static_cast<off_t>(f.synced)) != 0 && errno != ENOENT) {
        std::abort();  // the simulation itself failed
      }
    }
    f.size = f.synced;
  }
  crashed_ = false;
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::OpenWritable(const std::string& path, bool create) {
  std::lock_guard lk(mu_);
  if (crashed_) return Crashed();
  if (create && fail_creates_ > 0) {
    --fail_creates_;
    return ErrnoError(ENOSPC, "create " + path + " (injected)");
  }
  uint64_t existing = 0;
  if (!create) {
    auto r = base_->OpenReadable(path);
    if (!r.ok()) return r.status();
    auto size = (*r)->Size();
    if (!size.ok()) return size.status();
    existing = *size;
  }
  auto f = base_->OpenWritable(path, create);
  if (!f.ok()) return f.status();
  if (create) {
    files_[path] = {};
    created_unsynced_.insert(path);
  } else if (!files_.count(path)) {
    files_[path] = {existing, existing};  // what was there before is on disk
  }
  return std::unique_ptr<WritableFile>(new FaultFile(this, path, std::move(*f)));
}

Result<std::unique_ptr<ReadableFile>> FaultInjectionEnv::OpenReadable(const std::string& path) {
  {
    std::lock_guard lk(mu_);
    if (crashed_) return Crashed();
  }
  return base_->OpenReadable(path);
}

Result<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& dir) {
  {
    std::lock_guard lk(mu_);
    if (crashed_) return Crashed();
  }
  return base_->ListDir(dir);
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  std::lock_guard lk(mu_);
  if (crashed_) return Crashed();
  files_.erase(path);
  created_unsynced_.erase(path);
  return base_->RemoveFile(path);
}

Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard lk(mu_);
  if (crashed_) return Crashed();
  files_.erase(from);
  return base_->RenameFile(from, to);
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  {
    std::lock_guard lk(mu_);
    if (crashed_) return Crashed();
    ++syncs_;
    if (fail_syncs_ > 0) {
      --fail_syncs_;
      return ErrnoError(EIO, "fsync " + dir + " (injected)");
    }
  }
  Status s = base_->SyncDir(dir);
  std::lock_guard lk(mu_);
  if (s.ok()) created_unsynced_.clear();
  return s;
}

Status FaultInjectionEnv::MakeDirs(const std::string& dir) {
  {
    std::lock_guard lk(mu_);
    if (crashed_) return Crashed();
  }
  return base_->MakeDirs(dir);
}

Result<std::string> FaultInjectionEnv::ReadFile(const std::string& path) {
  {
    std::lock_guard lk(mu_);
    if (crashed_) return Crashed();
  }
  return base_->ReadFile(path);
}

Status FaultInjectionEnv::WriteFileAtomically(const std::string& path, std::string_view data) {
  {
    std::lock_guard lk(mu_);
    if (crashed_) return Crashed();
    if (fail_state_writes_ > 0) {
      --fail_state_writes_;
      return ErrnoError(EIO, "write " + path + " (injected)");
    }
  }
  return base_->WriteFileAtomically(path, data);  // durable on return
}

Result<std::unique_ptr<FileLock>> FaultInjectionEnv::LockFile(const std::string& path) {
  // Locking still works when "crashed": the lock dies with the process.
  return base_->LockFile(path);
}

}  // namespace mamori::telemetry::testing
