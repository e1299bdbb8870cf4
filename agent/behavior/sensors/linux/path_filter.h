// Watched-prefix matching for file events, shared by both sensors.
//
// The eBPF sensor reports open/create with the kernel's resolved path, and
// unlink/rename/chmod/chown with the path the syscall named (made absolute
// with the cwd or directory descriptor, but not resolved). The kernel only
// pre-filters those; user space normalises them lexically and decides here.
//
// Thread safety: PrefixFilter is immutable after Create; share freely.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::behavior::linux_sensors {

// Lexical normalisation of an absolute path: "//" -> "/", "." dropped, ".."
// removes the previous component (never above "/"), no trailing '/'.
// Symlinks are not resolved. A relative input is returned unchanged.
std::string NormalizePath(std::string_view path);

class PrefixFilter {
 public:
  // Validates and normalises `prefixes`: absolute, at most `max_count`
  // entries of at most `max_length` bytes. Errors: kInvalidArgument.
  static Result<PrefixFilter> Create(const std::vector<std::string>& prefixes, size_t max_count, size_t max_length);
  PrefixFilter() = default;

  // True when there are no prefixes, or `path` (normalised) is one of them or
  // below one.
  bool Matches(std::string_view path) const;
  // The normalised prefixes, without trailing '/' (except "/").
  const std::vector<std::string>& prefixes() const { return prefixes_; }

 private:
  std::vector<std::string> prefixes_;
};

}  // namespace mamori::behavior::linux_sensors
