#include "mamori/scanner/scanner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "budget.h"
#include "containers.h"
#include "expand.h"
#include "mail.h"
#include "parser_client.h"
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
constexpr size_t kKeepBufferCapacity = 8u << 20;
// Top-level files above this are not held in memory for YARA: libyara maps
// them itself (its scans catch SIGBUS, so a file truncated under the mapping
// ends the scan with an error instead of the process). Containers among them
// are walked by streaming from the descriptor.
constexpr uint64_t kBigFile = 8u << 20;
constexpr size_t kReadChunk = 1u << 20;

// A growable byte buffer that, unlike std::string::resize, never zero-fills:
// every byte is written by read() right after it is reserved.
class ReadBuffer {
 public:
  char* data() { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  void Clear() { size_ = 0; }
  // Ensures capacity for `total` bytes, keeping the current contents.
  void Reserve(size_t total) {
    if (total <= capacity_) return;
    std::unique_ptr<char[]> bigger(new char[total]);
    if (size_ > 0) std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    capacity_ = total;
  }
  // Marks `n` more bytes (already written past size()) as used.
  void Grow(size_t n) { size_ += n; }
  void ReleaseIfAbove(size_t cap) {
    if (capacity_ <= cap) return;
    data_.reset();
    capacity_ = size_ = 0;
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

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
  // `yara_fd` >= 0: YARA scans that descriptor (a big file, mapped by libyara) instead of `data`.
  // Returns true when the allow-list covers the object (its members are then not scanned).
  bool ScanObject(std::string_view data, uint64_t object_size, const std::string& object, int depth,
                  internal::Budget& budget, ScanReport& report, const Digests* precomputed, bool descend = true,
                  int yara_fd = -1);
  bool ShouldHash(uint64_t size) const {
    return sigs_.allow.sha256_count() > 0 || !options_.size_prefilter || sigs_.hashes.MaySizeMatch(size);
  }
  // True (and the object's findings dropped) when the allow-list names its digest.
  bool Allowed(const Digests& d, const std::string& object, ScanReport& report) {
    if (!d.has(DigestKind::kSha256) || !sigs_.allow.AllowsSha256(d.bytes(DigestKind::kSha256))) return false;
    report.findings.erase(std::remove_if(report.findings.begin(), report.findings.end(),
                                         [&](const Finding& f) { return f.object == object; }),
                          report.findings.end());
    return true;
  }
  void LookupHashes(const Digests& d, uint64_t size, const std::string& object, ScanReport& report);
  void AddYaraMatches(std::vector<YaraMatch>& matches, const std::string& object, const std::string& sha256,
                      ScanReport& report);
  void Descend(std::string_view data, const std::string& object, int depth, internal::Budget& budget,
               ScanReport& report);
  // Opens the top-level `source` in a parser worker; the members it sends back
  // are matched here (hash, allow-list, YARA) without opening them again.
  void DescendRemote(const internal::RemoteSource& source, const std::string& object, internal::Budget& budget,
                     ScanReport& report);
  internal::ExpandOptions expand_options() const { return {options_.open_containers, options_.open_mail}; }

  const SignatureSet& sigs_;
  ScanOptions options_;
  DigestMask digest_kinds_;
  std::unique_ptr<YaraScanner> yara_;
  Hasher hasher_;
  ReadBuffer buffer_;
  std::unique_ptr<char[]> stream_chunk_{new char[kReadChunk]};
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

bool Scanner::Impl::ScanObject(std::string_view data, uint64_t object_size, const std::string& object, int depth,
                               internal::Budget& budget, ScanReport& report, const Digests* precomputed,
                               bool descend, int yara_fd) {
  std::string sha256;
  Digests computed;
  const Digests* d = precomputed;
  if (d == nullptr && ShouldHash(object_size)) {
    hasher_.Reset(digest_kinds_);
    hasher_.Update(data);
    computed = hasher_.Finish();
    d = &computed;
  }
  if (d != nullptr) {
    sha256 = d->hex(DigestKind::kSha256);
    if (depth == 0) report.sha256 = sha256;
    // An allow-listed object is trusted whole, members included.
    if (Allowed(*d, object, report)) {
      if (depth == 0) report.allowed = true;
      return true;
    }
    LookupHashes(*d, object_size, object, report);
  }

  if (yara_ != nullptr) {
    Status s = yara_fd >= 0 ? yara_->ScanFd(yara_fd, budget.Remaining(), &matches_)
                            : yara_->ScanBuffer(data, budget.Remaining(), &matches_);
    if (s.code() == StatusCode::kDeadlineExceeded) {
      budget.Incomplete("time", object);
      budget.exhausted = true;
    } else if (!s.ok()) {
      budget.Incomplete("yara: " + s.message(), object);
    }
    AddYaraMatches(matches_, object, sha256, report);
  }
  if (descend && !budget.exhausted) Descend(data, object, depth, budget, report);
  return false;
}

void Scanner::Impl::Descend(std::string_view data, const std::string& object, int depth, internal::Budget& budget,
                            ScanReport& report) {
  if (options_.parser_pool != nullptr) {
    // Only a top-level object gets here with a pool: its members arrive
    // already opened by the worker and are scanned with descend=false.
    bool mail = false;
    if (internal::SniffObject(data, expand_options(), &mail) == internal::ContainerKind::kNone && !mail) return;
    DescendRemote(internal::RemoteSource{data}, object, budget, report);
    return;
  }
  internal::ExpandOneLevel(data, object, depth, expand_options(), budget,
                           [&](const std::string& name, std::string_view member) {
                             ScanObject(member, member.size(), object + "!" + name, depth + 1, budget, report,
                                        nullptr);
                           });
}

void Scanner::Impl::DescendRemote(const internal::RemoteSource& source, const std::string& object,
                                  internal::Budget& budget, ScanReport& report) {
  // Members under an allow-listed member are trusted with it, as in process.
  std::string skip_under;
  internal::RemoteExpand(*options_.parser_pool, source, object, expand_options(), budget,
                         [&](const internal::RemoteMember& m) {
                           if (!skip_under.empty() && m.path.compare(0, skip_under.size(), skip_under) == 0) {
                             return true;
                           }
                           if (ScanObject(m.data, m.data.size(), m.path, m.depth, budget, report, nullptr,
                                          /*descend=*/false)) {
                             skip_under = m.path + "!";
                           }
                           return !budget.exhausted;
                         });
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
  if (sigs_.allow.glob_count() > 0 && sigs_.allow.AllowsPath(path)) {
    report.allowed = true;
    return report;
  }
  internal::Budget budget(options_.limits);
  const uint64_t in_memory_limit = std::max<uint64_t>(options_.limits.max_in_memory, 1);

  // One read pass, hashing as the bytes arrive. The bytes are kept in memory
  // only when the file is small and something needs all of them (YARA, a
  // container, mail); otherwise one chunk-sized buffer is reused. Reading until EOF rather than
  // to st_size copes with files that shrink or grow under us.
  const bool hash_whole = ShouldHash(static_cast<uint64_t>(st.st_size));
  hasher_.Reset(digest_kinds_);
  buffer_.Clear();
  const uint64_t expected = static_cast<uint64_t>(st.st_size) + 1;  // +1 sees EOF without another allocation
  struct ReleaseAtExit {
    ReadBuffer& buffer;
    ~ReleaseAtExit() { buffer.ReleaseIfAbove(kKeepBufferCapacity); }
  } release_at_exit{buffer_};
  const bool big = expected > std::min(in_memory_limit, kBigFile);
  // Until the first chunk says whether the bytes are needed, reserve one
  // chunk, or the whole (small) file when YARA will want it anyway.
  buffer_.Reserve(static_cast<size_t>(yara_ && !big ? expected : std::min<uint64_t>(expected, kReadChunk)));
  uint64_t total = 0;
  bool keep = true;  // decided after the first chunk
  bool decided = false;
  bool timed_out = false;
  internal::ContainerKind container = internal::ContainerKind::kNone;
  for (;;) {
    char* dst = stream_chunk_.get();
    size_t room = kReadChunk;
    const bool into_buffer = keep && buffer_.size() < in_memory_limit;
    if (into_buffer) {
      if (buffer_.capacity() == buffer_.size()) {
        // The file is larger than stat said (or keep was just decided): grow to
        // the expected size first, then geometrically if it keeps growing.
        uint64_t want = buffer_.size() < expected ? expected : 2 * static_cast<uint64_t>(buffer_.capacity());
        buffer_.Reserve(static_cast<size_t>(std::min<uint64_t>(in_memory_limit, std::max<uint64_t>(want, buffer_.size() + 4096))));
      }
      dst = buffer_.data() + buffer_.size();
      room = std::min(kReadChunk, buffer_.capacity() - buffer_.size());
    }
    ssize_t n = ::pread(fd, dst, room, static_cast<off_t>(total));
    if (n < 0) {
      if (errno == EINTR) continue;
      report.error = "read " + path + ": " + std::strerror(errno);
      report.verdict = Verdict::kError;
      return report;
    }
    if (n == 0) break;
    if (hash_whole) hasher_.Update(std::string_view(dst, static_cast<size_t>(n)));
    total += static_cast<uint64_t>(n);
    if (into_buffer) buffer_.Grow(static_cast<size_t>(n));
    if (!decided) {
      decided = true;
      std::string_view head(buffer_.data(), buffer_.size());
      container = options_.open_containers ? internal::SniffContainer(head) : internal::ContainerKind::kNone;
      const bool mail = container == internal::ContainerKind::kNone && options_.open_mail && internal::LooksLikeMail(head);
      // Mail is parsed in memory whatever its size; everything else is held
      // only when small and something (YARA, a container walk) needs it.
      keep = mail || (!big && (yara_ != nullptr || container != internal::ContainerKind::kNone));
    }
    if (!into_buffer && budget.TimeUp()) {
      timed_out = true;
      break;
    }
  }
  Digests digests = hasher_.Finish();
  if (!hash_whole) digests.present = 0;
  report.size = total;
  if (timed_out) {
    // The hash is of a prefix only: do not look it up.
    budget.Incomplete("time", path);
    report.incomplete = std::move(budget.incomplete);
    report.verdict = Decide(report);
    return report;
  }
  if (keep) {
    std::string_view bytes(buffer_.data(), buffer_.size());
    const bool partial = total > buffer_.size();
    if (partial) {
      budget.Incomplete("file-size: mail larger than the in-memory limit, first " + std::to_string(buffer_.size()) +
                            " bytes decoded",
                        path);
    }
    ScanObject(bytes, total, path, 0, budget, report, &digests, /*descend=*/true);
  } else {
    // Hash lookup, allow-list, and YARA over the file itself.
    ScanObject({}, total, path, 0, budget, report, &digests, /*descend=*/false, yara_ ? fd : -1);
    if (container != internal::ContainerKind::kNone && !budget.exhausted && !report.allowed) {
      // A big container is walked by streaming from the file.
      if (options_.parser_pool != nullptr) {
        DescendRemote(internal::RemoteSource{{}, fd, total, container}, path, budget, report);
        report.incomplete = std::move(budget.incomplete);
        report.verdict = Decide(report);
        return report;
      }
      internal::ContainerSource src{{}, fd, total};
      internal::WalkContainer(src, container, path, budget, [&](const std::string& name, std::string_view member) {
        ScanObject(member, member.size(), path + "!" + name, 1, budget, report, nullptr);
      });
    }
  }
  report.incomplete = std::move(budget.incomplete);
  report.verdict = Decide(report);
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
