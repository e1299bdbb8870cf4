#include "mamori/scanner/scanner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "budget.h"
#include "containers.h"
#include "mail.h"
#include "mamori/scanner/hasher.h"
#include "mamori/scanner/yara_engine.h"

namespace mamori::scanner {

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kClean: return "clean";
    case Verdict::kFound: return "found";
    case Verdict::kIncomplete: return "incomplete";
    case Verdict::kError: return "error";
  }
  return "error";
}

namespace {

// Per-worker read buffers above this are released after use so that one huge
// file does not pin its size in every worker for the rest of the scan.
constexpr size_t kKeepBufferCapacity = 16u << 20;
constexpr size_t kReadChunk = 1u << 20;

Verdict Decide(const ScanReport& r) {
  if (!r.findings.empty()) return Verdict::kFound;
  if (!r.error.empty()) return Verdict::kError;
  if (!r.incomplete.empty()) return Verdict::kIncomplete;
  return Verdict::kClean;
}

}  // namespace

class Scanner::Impl {
 public:
  Impl(const SignatureSet& sigs, ScanOptions options) : sigs_(sigs), options_(options) {
    digest_kinds_ = sigs_.hashes.kinds() | DigestBit(DigestKind::kSha256);
  }

  Status Init() {
    if (sigs_.yara != nullptr) {
      auto y = YaraScanner::Create(sigs_.yara);
      if (!y.ok()) return y.status();
      yara_ = std::move(*y);
    }
    return Status::Ok();
  }

  ScanReport ScanFd(int fd, const struct stat& st, const std::string& path);
  ScanReport ScanBuffer(std::string_view data, const std::string& name);

 private:
  // The one scan path: every object, at any depth, comes through here.
  // `precomputed`: digests of `data` already taken while reading (top level).
  // `descend`: open containers/mail found in `data` (false when `data` is only
  // a prefix of the object).
  void ScanObject(std::string_view data, uint64_t object_size, const std::string& object, int depth,
                  internal::Budget& budget, ScanReport& report, const Digests* precomputed, bool descend = true);
  bool ShouldHash(uint64_t size) const {
    return !(options_.size_prefilter && !sigs_.hashes.MaySizeMatch(size));
  }
  void LookupHashes(const Digests& d, uint64_t size, const std::string& object, ScanReport& report);
  void AddYaraMatches(std::vector<YaraMatch>& matches, const std::string& object, const std::string& sha256,
                      ScanReport& report);
  void Descend(std::string_view data, const std::string& object, int depth, internal::Budget& budget,
               ScanReport& report);

  const SignatureSet& sigs_;
  ScanOptions options_;
  DigestMask digest_kinds_;
  std::unique_ptr<YaraScanner> yara_;
  Hasher hasher_;
  std::string buffer_;
  std::vector<YaraMatch> matches_;
};

void Scanner::Impl::LookupHashes(const Digests& d, uint64_t size, const std::string& object, ScanReport& report) {
  for (int k = 0; k < kDigestKindCount; ++k) {
    auto kind = static_cast<DigestKind>(k);
    if (!d.has(kind)) continue;
    if (auto name = sigs_.hashes.Lookup(kind, d.bytes(kind), size)) {
      Finding f;
      f.object = object;
      f.signature = std::string(*name);
      f.kind = FindingKind::kHash;
      f.sha256 = d.hex(DigestKind::kSha256);
      report.findings.push_back(std::move(f));
      return;  // one hash finding per object is enough
    }
  }
}

void Scanner::Impl::AddYaraMatches(std::vector<YaraMatch>& matches, const std::string& object,
                                   const std::string& sha256, ScanReport& report) {
  for (YaraMatch& m : matches) {
    Finding f;
    f.object = object;
    f.signature = std::move(m.rule);
    f.kind = FindingKind::kYara;
    f.name_space = std::move(m.name_space);
    f.tags = std::move(m.tags);
    f.meta = std::move(m.meta);
    f.sha256 = sha256;
    report.findings.push_back(std::move(f));
  }
  matches.clear();
}

void Scanner::Impl::ScanObject(std::string_view data, uint64_t object_size, const std::string& object, int depth,
                               internal::Budget& budget, ScanReport& report, const Digests* precomputed,
                               bool descend) {
  std::string sha256;
  if (precomputed != nullptr) {
    LookupHashes(*precomputed, object_size, object, report);
    sha256 = precomputed->hex(DigestKind::kSha256);
  } else if (ShouldHash(object_size)) {
    hasher_.Reset(digest_kinds_);
    hasher_.Update(data);
    Digests d = hasher_.Finish();
    LookupHashes(d, object_size, object, report);
    sha256 = d.hex(DigestKind::kSha256);
  }
  if (depth == 0) report.sha256 = sha256;

  if (yara_ != nullptr) {
    Status s = yara_->ScanBuffer(data, budget.Remaining(), &matches_);
    if (s.code() == StatusCode::kDeadlineExceeded) {
      budget.Incomplete("time", object);
      budget.exhausted = true;
    } else if (!s.ok()) {
      budget.Incomplete("yara: " + s.message(), object);
    }
    AddYaraMatches(matches_, object, sha256, report);
  }
  if (descend && !budget.exhausted) Descend(data, object, depth, budget, report);
}

void Scanner::Impl::Descend(std::string_view data, const std::string& object, int depth, internal::Budget& budget,
                            ScanReport& report) {
  auto kind = options_.open_containers ? internal::SniffContainer(data) : internal::ContainerKind::kNone;
  bool mail = kind == internal::ContainerKind::kNone && options_.open_mail && internal::LooksLikeMail(data);
  if (kind == internal::ContainerKind::kNone && !mail) return;
  if (depth >= budget.limits.max_depth) {
    budget.Incomplete("depth", object);
    return;
  }
  if (kind != internal::ContainerKind::kNone) {
    internal::ContainerSource src{data, -1, data.size()};
    internal::WalkContainer(src, kind, object, budget, [&](const std::string& name, std::string_view member) {
      ScanObject(member, member.size(), object + "!" + name, depth + 1, budget, report, nullptr);
    });
    return;
  }
  internal::MailLimits ml;
  ml.max_parts = budget.limits.max_members - std::min(budget.members, budget.limits.max_members);
  ml.max_total_bytes = budget.limits.max_total_extracted - std::min(budget.extracted_bytes, budget.limits.max_total_extracted);
  ml.max_depth = budget.limits.max_depth - depth;
  internal::MailParseResult parsed = internal::ParseMail(data, ml);
  if (!parsed.incomplete.empty()) budget.Incomplete(parsed.incomplete, object);
  // The parts decoded before a limit are scanned all the same; the limit only
  // stops what comes after this mail.
  for (const internal::MailPart& part : parsed.parts) {
    if (budget.exhausted) break;
    ++budget.members;
    budget.extracted_bytes += part.data.size();
    ScanObject(part.data, part.data.size(), object + "!" + part.name, depth + 1, budget, report, nullptr);
  }
  if (budget.members >= budget.limits.max_members || budget.extracted_bytes >= budget.limits.max_total_extracted) {
    budget.exhausted = true;
  }
}

ScanReport Scanner::Impl::ScanBuffer(std::string_view data, const std::string& name) {
  ScanReport report;
  report.path = name;
  report.size = data.size();
  internal::Budget budget(options_.limits);
  ScanObject(data, data.size(), name, 0, budget, report, nullptr);
  report.incomplete = std::move(budget.incomplete);
  report.verdict = Decide(report);
  return report;
}

ScanReport Scanner::Impl::ScanFd(int fd, const struct stat& st, const std::string& path) {
  ScanReport report;
  report.path = path;
  report.size = static_cast<uint64_t>(st.st_size);
  internal::Budget budget(options_.limits);
  const uint64_t in_memory_limit = options_.limits.max_in_memory;

  // One read pass: the bytes land in the reused buffer (up to the in-memory
  // limit) and are hashed as they arrive. Reading until EOF rather than to
  // st_size copes with files that shrink or grow under us.
  const bool hash_whole = ShouldHash(static_cast<uint64_t>(st.st_size));
  hasher_.Reset(digest_kinds_);
  buffer_.clear();
  uint64_t total = 0;
  bool read_error = false;
  bool timed_out = false;
  for (;;) {
    if (buffer_.size() < in_memory_limit) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(kReadChunk, in_memory_limit - buffer_.size()));
      size_t old = buffer_.size();
      buffer_.resize(old + want);
      ssize_t n = ::pread(fd, buffer_.data() + old, want, static_cast<off_t>(total));
      if (n < 0) {
        buffer_.resize(old);
        if (errno == EINTR) continue;
        report.error = "read " + path + ": " + std::strerror(errno);
        read_error = true;
        break;
      }
      buffer_.resize(old + static_cast<size_t>(n));
      if (n == 0) break;
      if (hash_whole) hasher_.Update(std::string_view(buffer_.data() + old, static_cast<size_t>(n)));
      total += static_cast<uint64_t>(n);
    } else {
      // Beyond the in-memory limit: keep hashing so hash signatures still see the whole file.
      char chunk[1 << 16];
      ssize_t n = ::pread(fd, chunk, sizeof chunk, static_cast<off_t>(total));
      if (n < 0) {
        if (errno == EINTR) continue;
        report.error = "read " + path + ": " + std::strerror(errno);
        read_error = true;
        break;
      }
      if (n == 0) break;
      if (hash_whole) hasher_.Update(std::string_view(chunk, static_cast<size_t>(n)));
      total += static_cast<uint64_t>(n);
      if (budget.TimeUp()) {
        timed_out = true;
        break;
      }
    }
  }
  Digests digests = hasher_.Finish();
  if (!hash_whole) digests.present = 0;
  report.size = total;
  if (read_error) {
    report.verdict = Verdict::kError;
    if (buffer_.capacity() > kKeepBufferCapacity) std::string().swap(buffer_);
    return report;
  }
  if (timed_out) budget.Incomplete("time", path);
  const bool partial = total > buffer_.size();
  if (partial) budget.Incomplete("file-size: patterns scanned in the first " + std::to_string(buffer_.size()) + " bytes", path);
  if (timed_out) {
    // The hash is of a prefix only: do not look it up.
    report.incomplete = std::move(budget.incomplete);
    report.verdict = Decide(report);
    return report;
  }
  ScanObject(buffer_, total, path, 0, budget, report, &digests, /*descend=*/!partial);
  if (partial && !budget.exhausted) {
    // A container larger than memory is walked by streaming from the file.
    auto kind = options_.open_containers ? internal::SniffContainer(buffer_) : internal::ContainerKind::kNone;
    if (kind != internal::ContainerKind::kNone) {
      internal::ContainerSource src{{}, fd, total};
      internal::WalkContainer(src, kind, path, budget, [&](const std::string& name, std::string_view member) {
        ScanObject(member, member.size(), path + "!" + name, 1, budget, report, nullptr);
      });
    }
  }
  report.incomplete = std::move(budget.incomplete);
  report.verdict = Decide(report);
  if (buffer_.capacity() > kKeepBufferCapacity) std::string().swap(buffer_);
  return report;
}

Result<std::unique_ptr<Scanner>> Scanner::Create(std::shared_ptr<const SignatureSet> signatures, ScanOptions options) {
  if (signatures == nullptr) return InvalidArgumentError("Scanner needs a signature set");
  std::unique_ptr<Scanner> s(new Scanner());
  s->signatures_ = std::move(signatures);
  s->impl_ = std::make_unique<Impl>(*s->signatures_, options);
  MAMORI_RETURN_IF_ERROR(s->impl_->Init());
  return s;
}

Scanner::~Scanner() = default;

ScanReport Scanner::ScanFile(const std::string& path, bool follow_symlink) {
  int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (follow_symlink ? 0 : O_NOFOLLOW);
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    ScanReport r;
    r.path = path;
    r.verdict = Verdict::kError;
    r.error = "open " + path + ": " + std::strerror(errno);
    return r;
  }
  struct stat st {};
  ScanReport r;
  if (::fstat(fd, &st) != 0) {
    r.path = path;
    r.verdict = Verdict::kError;
    r.error = "stat " + path + ": " + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    r.path = path;
    r.verdict = Verdict::kError;
    r.error = path + ": not a regular file";
  } else {
    r = ScanFd(fd, st, path);
  }
  ::close(fd);
  return r;
}

ScanReport Scanner::ScanFd(int fd, const struct stat& st, const std::string& path) {
  return impl_->ScanFd(fd, st, path);
}

ScanReport Scanner::ScanBuffer(std::string_view data, const std::string& name) {
  return impl_->ScanBuffer(data, name);
}

}  // namespace mamori::scanner
