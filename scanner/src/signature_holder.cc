#include "mamori/scanner/signature_holder.h"


namespace mamori::scanner {

SignatureHolder::SignatureHolder(std::shared_ptr<const SignatureSet> initial) : current_(std::move(initial)) {}

std::shared_ptr<const SignatureSet> SignatureHolder::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

uint64_t SignatureHolder::version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_ ? current_->bundle_version : 0;
}

Status SignatureHolder::Install(std::shared_ptr<const SignatureSet> next) {
  if (next == nullptr) return InvalidArgumentError("no signature set to install");
  std::shared_ptr<const SignatureSet> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_ != nullptr && current_->bundle_version > 0 && next->bundle_version <= current_->bundle_version) {
      return FailedPreconditionError("signature bundle version " + std::to_string(next->bundle_version) +
                                     " is not newer than version " + std::to_string(current_->bundle_version) +
                                     " in use (downgrade or replay refused)");
    }
    old = std::move(current_);
    current_ = std::move(next);
  }
  // `old` is released here, outside the lock: if this was the last reference,
  // freeing a large set must not stall readers.
  return Status::Ok();
}

std::future<Status> SignatureHolder::InstallInBackground(
    std::function<Result<std::shared_ptr<const SignatureSet>>()> build) {
  return std::async(std::launch::async, [this, build = std::move(build)]() -> Status {
    auto next = build();
    if (!next.ok()) return next.status();
    return Install(std::move(*next));
  });
}

}  // namespace mamori::scanner
