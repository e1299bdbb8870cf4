// Open: lock the folder, read the state file, check segment headers, scan the
// tail of the log (the segments that may hold records newer than the state
// file's floor), cut a torn tail, pick the next sequence, commit once.
#include <algorithm>
#include <vector>

#include "format.h"
#include "mamori/common/log.h"
#include "spool_impl.h"

namespace mamori::telemetry {

using spool_format::HeaderCheck;
using spool_format::kSegmentHeaderSize;

namespace {

struct Found {
  uint64_t first_seq;
  std::string path;
  uint64_t size = 0;
  HeaderCheck check = HeaderCheck::kOk;
  uint32_t version = 0;
};

// What the scan of one segment learned.
struct ScanResult {
  uint64_t last_seq = 0;           // highest sequence of a valid frame (0: none)
  uint64_t end = 0;                // end offset of the last valid frame
  std::vector<uint64_t> damaged;   // offsets of damaged places skipped
  bool drop_report_since = false;  // a drop report with sequence >= floor
};

Result<ScanResult> ScanSegment(ReadableFile* file, const std::string& path, uint64_t size, uint64_t floor) {
  ScanResult r;
  r.end = kSegmentHeaderSize;
  SegmentScanner scanner(file, kSegmentHeaderSize, size);
  for (;;) {
    SegmentScanner::Frame f;
    const char* why = nullptr;
    auto step = scanner.Next(&f, &why);
    if (!step.ok()) return step.status();
    if (*step == SegmentScanner::Step::kEnd) break;
    if (*step == SegmentScanner::Step::kFrame) {
      r.last_seq = std::max(r.last_seq, f.header.seq);
      r.end = scanner.offset();
      if ((f.header.flags & spool_format::kFlagDropReport) != 0 && f.header.seq >= floor) r.drop_report_since = true;
      continue;
    }
    const uint64_t bad_at = scanner.offset();
    auto found = scanner.Resync(r.last_seq);
    if (!found.ok()) return found.status();
    if (!*found) break;  // nothing valid after it: a torn tail (the caller decides)
    r.damaged.push_back(bad_at);
    MAMORI_LOG(kWarning, "spool: " << path << ":" << bad_at << ": " << why
                                   << "; damaged bytes skipped, the records after them are kept");
  }
  return r;
}

}  // namespace

Status SpoolImpl::CreateSegmentLocked(uint64_t first_seq) {
  std::string path = spool_format::SegmentPath(options_.dir, first_seq);
  auto file = env_->OpenWritable(path, /*create=*/true);
  if (!file.ok()) return file.status();
  char header[kSegmentHeaderSize];
  spool_format::EncodeSegmentHeader(first_seq, header);
  Status s = (*file)->Append(std::string_view(header, sizeof header));
  if (!s.ok()) {
    file->reset();
    Status r = env_->RemoveFile(path);
    if (!r.ok()) MAMORI_LOG(kWarning, "spool: " << r.ToString());
    return s;
  }
  if (!segments_.empty()) segments_.back().closed = true;
  Segment seg;
  seg.first_seq = first_seq;
  seg.path = std::move(path);
  seg.size = seg.written = kSegmentHeaderSize;
  seg.file = std::move(*file);
  segments_.push_back(std::move(seg));
  bytes_ += kSegmentHeaderSize;
  dir_dirty_ = true;
  return Status::Ok();
}

Status SpoolImpl::Recover() {
  MAMORI_RETURN_IF_ERROR(env_->MakeDirs(options_.dir));
  auto lock = env_->LockFile(options_.dir + "/LOCK");
  if (!lock.ok()) return lock.status();
  lock_ = std::move(*lock);

  // The state file. Damaged: start from the segments alone (acknowledged
  // records come again; the server dedupes them).
  SpoolState state;
  bool state_damaged = false;
  if (auto text = env_->ReadFile(state_path_); text.ok()) {
    auto decoded = DecodeState(*text);
    if (decoded.ok()) {
      state = *decoded;
    } else if (decoded.status().code() == StatusCode::kFailedPrecondition) {
      return decoded.status();
    } else {
      state_damaged = true;
      ++counters_.corrupt_records;
      MAMORI_LOG(kWarning, "spool " << options_.dir << ": " << decoded.status().ToString()
                                    << "; acknowledged records will be delivered again");
    }
  } else if (text.status().code() != StatusCode::kNotFound) {
    return text.status();
  }

  auto names = env_->ListDir(options_.dir);
  if (!names.ok()) return names.status();
  std::vector<Found> found;
  for (const std::string& name : *names) {
    if (name.rfind(std::string(kStateFileName) + ".tmp.", 0) == 0) {
      Status r = env_->RemoveFile(options_.dir + "/" + name);  // a state write cut short
      if (!r.ok()) MAMORI_LOG(kWarning, "spool: " << r.ToString());
      continue;
    }
    if (auto first = spool_format::ParseSegmentName(name); first.has_value() && *first > 0) {
      found.push_back({*first, options_.dir + "/" + name});
    }
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.first_seq < b.first_seq; });

  // Headers.
  for (Found& f : found) {
    auto file = env_->OpenReadable(f.path);
    if (!file.ok()) return file.status();
    auto size = (*file)->Size();
    if (!size.ok()) return size.status();
    f.size = *size;
    char header[kSegmentHeaderSize] = {};
    auto got = (*file)->ReadAt(0, header, sizeof header);
    if (!got.ok()) return got.status();
    spool_format::SegmentHeader h;
    f.check = spool_format::DecodeSegmentHeader(std::string_view(header, *got), &h);
    f.version = h.version;
    if (f.check == HeaderCheck::kNewer) {
      return FailedPreconditionError(f.path + " has spool format version " + std::to_string(h.version) +
                                     "; this build reads up to " + std::to_string(spool_format::kFormatVersion));
    }
    if (f.check == HeaderCheck::kOk && h.first_seq != f.first_seq) f.check = HeaderCheck::kCorrupt;
  }

  // A torn header anywhere but in a header-sized last segment is damage.
  for (size_t i = 0; i < found.size(); ++i) {
    if (found[i].check == HeaderCheck::kTorn && (i + 1 < found.size() || found[i].size > kSegmentHeaderSize)) {
      found[i].check = HeaderCheck::kCorrupt;
    }
  }
  // The last segment with a torn header (its creation was cut short) holds
  // nothing: write its header again.
  if (!found.empty() && found.back().check == HeaderCheck::kTorn) {
    Found& last = found.back();
    auto file = env_->OpenWritable(last.path, /*create=*/false);
    if (!file.ok()) return file.status();
    MAMORI_RETURN_IF_ERROR((*file)->Truncate(0));
    char header[kSegmentHeaderSize];
    spool_format::EncodeSegmentHeader(last.first_seq, header);
    MAMORI_RETURN_IF_ERROR((*file)->Append(std::string_view(header, sizeof header)));
    counters_.truncated_bytes += last.size;
    last.size = kSegmentHeaderSize;
    last.check = HeaderCheck::kOk;
    last.version = spool_format::kFormatVersion;
  }

  // Acknowledged segments are deleted oldest first, so a missing prefix was
  // acknowledged, not lost.
  acked_ = state.acked;
  if (!found.empty()) acked_ = std::max(acked_, found.front().first_seq - 1);

  // Scan the tail: from the segment holding `floor` (everything below was
  // committed when the state file was written) to the end.
  const uint64_t floor = std::max<uint64_t>(state.floor, 1);
  size_t scan_from = 0;
  for (size_t i = 0; i < found.size(); ++i) {
    if (found[i].first_seq <= floor) scan_from = i;
  }
  uint64_t last_seq = 0;  // highest sequence present in the log
  bool drop_report_since = false;
  for (size_t i = 0; i < found.size(); ++i) {
    Found& f = found[i];
    const bool is_last = i + 1 == found.size();
    Segment seg;
    seg.first_seq = f.first_seq;
    seg.path = f.path;
    seg.size = seg.written = f.size;
    seg.closed = true;
    if (f.check != HeaderCheck::kOk) {
      seg.unreadable = true;
      ++counters_.corrupt_records;
      MAMORI_LOG(kWarning, "spool: " << f.path << ":0: damaged segment header; its records will be reported lost");
    } else if (i >= scan_from) {
      auto file = env_->OpenReadable(f.path);
      if (!file.ok()) return file.status();
      auto r = ScanSegment(file->get(), f.path, f.size, floor);
      if (!r.ok()) return r.status();
      counters_.corrupt_records += r->damaged.size();
      for (uint64_t at : r->damaged) cursor_.reported.insert({f.first_seq, at});  // counted once
      drop_report_since = drop_report_since || r->drop_report_since;
      last_seq = std::max(last_seq, std::max(r->last_seq, f.first_seq - 1));
      auto writable = env_->OpenWritable(f.path, /*create=*/false);
      if (!writable.ok()) return writable.status();
      if (is_last && r->end < f.size) {
        MAMORI_LOG(kWarning,
                   "spool: " << f.path << ":" << r->end << ": torn tail of " << (f.size - r->end) << " bytes cut off");
        MAMORI_RETURN_IF_ERROR((*writable)->Truncate(r->end));
        counters_.truncated_bytes += f.size - r->end;
        seg.size = seg.written = r->end;
      }
      seg.file = std::move(*writable);  // committed below (a kill -9 leaves unsynced pages)
    }
    if (!seg.unreadable) last_seq = std::max(last_seq, f.first_seq - 1);
    bytes_ += seg.size;
    segments_.push_back(std::move(seg));
  }

  // Sequences are never given out twice: continue after the log, the floor
  // and the acknowledgement, whichever is highest. A jump past the log's end
  // shows up as a lost range when the cursor reaches it.
  next_seq_ = std::max({last_seq + 1, floor, acked_ + 1});
  // Appends go only into a segment of the current format version.
  bool reuse_last = !segments_.empty() && !segments_.back().unreadable && next_seq_ == last_seq + 1 &&
                    segments_.back().file != nullptr && found.back().version == spool_format::kFormatVersion;
  if (!segments_.empty() && segments_.back().unreadable && segments_.back().first_seq >= next_seq_) {
    // A damaged last segment whose sequences were never committed: move it
    // aside so that the new segment can take its name.
    Segment& bad = segments_.back();
    MAMORI_RETURN_IF_ERROR(env_->RenameFile(bad.path, bad.path + ".damaged"));
    MAMORI_LOG(kWarning, "spool: " << bad.path << " moved aside to " << bad.path << ".damaged");
    bytes_ -= bad.size;
    segments_.pop_back();
  }
  written_seq_ = next_seq_ - 1;
  if (reuse_last) {
    segments_.back().closed = false;
  } else {
    MAMORI_RETURN_IF_ERROR(CreateSegmentLocked(next_seq_));
  }
  for (size_t i = 0; i + 1 < segments_.size(); ++i) segments_[i].closed = true;

  pending_drops_ = drop_report_since ? DropCounts{} : DropCounts{state.drops_low, state.drops_normal};
  state_floor_ = state_damaged ? 0 : state.floor;
  handed_out_ = acked_;
  durable_seq_ = 0;
  durable_pos_ = {segments_.front().first_seq, kSegmentHeaderSize};

  // Commit what a kill -9 may have left in the page cache, save a fresh
  // state file; from here on every recovered record counts as committed.
  std::unique_lock lk(mu_);
  state_dirty_ = true;
  RunCommitLocked(lk);
  if (!sticky_.ok()) return sticky_;
  return last_commit_status_;
}

}  // namespace mamori::telemetry
