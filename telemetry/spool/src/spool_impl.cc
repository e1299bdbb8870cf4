#include "spool_impl.h"

#include <algorithm>
#include <cstring>

#include "crc32c.h"
#include "format.h"
#include "mamori/common/log.h"

namespace mamori::telemetry {

using spool_format::kFrameHeaderSize;
using spool_format::kSegmentHeaderSize;

std::string_view PriorityName(Priority p) {
  switch (p) {
    case Priority::kLow:
      return "low";
    case Priority::kNormal:
      return "normal";
    case Priority::kCritical:
      return "critical";
  }
  return "unknown";
}

void SpoolBatchBuilder::AddRecord(uint64_t sequence, Priority priority, std::string_view payload) {
  size_t offset = b_->data_.size();
  b_->data_.insert(b_->data_.end(), payload.begin(), payload.end());
  b_->entries_.push_back({sequence, priority, offset, payload.size()});
  b_->last_sequence_ = std::max(b_->last_sequence_, sequence);
}

void SpoolBatchBuilder::AddLost(uint64_t first, uint64_t last, Status reason) {
  b_->lost_.push_back({first, last, std::move(reason)});
  b_->last_sequence_ = std::max(b_->last_sequence_, last);
}

Result<std::unique_ptr<Spool>> Spool::Open(SpoolOptions options) { return SpoolImpl::Open(std::move(options)); }

SpoolImpl::SpoolImpl(SpoolOptions options)
    : options_(std::move(options)), env_(options_.env != nullptr ? options_.env : SpoolEnv::Default()) {}

Result<std::unique_ptr<Spool>> SpoolImpl::Open(SpoolOptions options) {
  if (options.dir.empty()) return InvalidArgumentError("spool: empty dir");
  if (options.max_bytes < (16u << 10)) return InvalidArgumentError("spool: max_bytes below 16 KiB");
  if (options.low_limit_percent == 0 || options.low_limit_percent > 100) {
    return InvalidArgumentError("spool: low_limit_percent must be 1..100");
  }
  if (options.critical_overflow_percent > 100) {
    return InvalidArgumentError("spool: critical_overflow_percent must be 0..100");
  }
  if (options.sync_interval.count() < 0) return InvalidArgumentError("spool: negative sync_interval");
  std::unique_ptr<SpoolImpl> spool(new SpoolImpl(std::move(options)));
  const SpoolOptions& o = spool->options_;
  spool->segment_bytes_ =
      std::clamp<uint64_t>(o.segment_bytes, 4u << 10, std::max<uint64_t>(4u << 10, o.max_bytes / 8));
  spool->low_limit_ = o.max_bytes / 100 * o.low_limit_percent + o.max_bytes % 100 * o.low_limit_percent / 100;
  spool->ceiling_ = o.max_bytes + o.max_bytes / 100 * o.critical_overflow_percent;
  spool->state_path_ = o.dir + "/" + kStateFileName;
  spool->group_ = std::make_shared<WriteGroup>();
  if (Status s = spool->Recover(); !s.ok()) {
    spool->closed_ = true;  // nothing to commit on the way out
    return s.WithContext("open spool " + o.dir);
  }
  if (o.sync_interval.count() > 0) spool->commit_thread_ = std::thread([p = spool.get()] { p->CommitThread(); });
  return std::unique_ptr<Spool>(std::move(spool));
}

SpoolImpl::~SpoolImpl() {
  Status s = Close();
  if (!s.ok()) MAMORI_LOG(kError, "spool " << options_.dir << ": close: " << s.ToString());
}

uint64_t SpoolImpl::LimitFor(Priority priority) const {
  switch (priority) {
    case Priority::kLow:
      return low_limit_;
    case Priority::kNormal:
      return options_.max_bytes;
    case Priority::kCritical:
      return ceiling_;
  }
  return 0;
}

Result<uint64_t> SpoolImpl::Append(Priority priority, std::string_view payload, bool wait_durable) {
  return AppendFrame(priority, payload, 0, wait_durable, nullptr);
}

Result<uint64_t> SpoolImpl::AppendFrame(Priority priority, std::string_view payload, uint8_t flags, bool wait_durable,
                                        const DropCounts* reported) {
  if (static_cast<uint8_t>(priority) > spool_format::kMaxPriority) return InvalidArgumentError("spool: bad priority");
  if (payload.size() > spool_format::kMaxPayloadBytes) {
    return InvalidArgumentError("spool: record of " + std::to_string(payload.size()) + " bytes exceeds 4 MiB");
  }
  const uint64_t frame_size = kFrameHeaderSize + payload.size();
  if (priority == Priority::kCritical && frame_size + 2 * kSegmentHeaderSize > ceiling_) {
    return InvalidArgumentError("spool: record larger than the whole spool");
  }
  const uint32_t payload_crc = crc32c::Value(payload);  // outside the lock

  std::unique_lock lk(mu_);
  for (;;) {
    if (closed_) return FailedPreconditionError("spool: closed");
    if (!sticky_.ok()) return sticky_;
    if (bytes_ + frame_size > LimitFor(priority)) {
      if (priority == Priority::kCritical) {
        ++counters_.critical_rejected;
        return ResourceExhaustedError("spool full: " + std::to_string(bytes_) + " bytes used, ceiling " +
                                      std::to_string(ceiling_) + "; keep the record and retry once delivered");
      }
      ++counters_.dropped[static_cast<int>(priority)];
      (priority == Priority::kLow ? pending_drops_.low : pending_drops_.normal)++;
      state_dirty_ = true;
      return kDropped;
    }
    Segment& active = segments_.back();
    if (active.size > kSegmentHeaderSize && active.size + frame_size > segment_bytes_) {
      if (writing_ || !group_->bytes.empty()) {  // the active file changes only when all is written
        write_cv_.wait(lk);
        continue;
      }
      MAMORI_RETURN_IF_ERROR(CreateSegmentLocked(next_seq_));
      continue;  // re-check the bound: the new header counts too
    }
    break;
  }

  // Admitted: frame it into the current group.
  const uint64_t seq = next_seq_++;
  std::shared_ptr<WriteGroup> group = group_;
  size_t at = group->bytes.size();
  group->bytes.resize(at + frame_size);
  spool_format::EncodeFrameHeader(seq, static_cast<uint32_t>(payload.size()), static_cast<uint8_t>(priority), flags,
                                  payload_crc, group->bytes.data() + at);
  if (!payload.empty()) std::memcpy(group->bytes.data() + at + kFrameHeaderSize, payload.data(), payload.size());
  if (group->first_seq == 0) group->first_seq = seq;
  group->last_seq = seq;
  segments_.back().size += frame_size;
  bytes_ += frame_size;
  ++counters_.appended[static_cast<int>(priority)];
  ++group->admitted[static_cast<int>(priority)];
  if (reported != nullptr) {
    pending_drops_.low -= std::min(pending_drops_.low, reported->low);
    pending_drops_.normal -= std::min(pending_drops_.normal, reported->normal);
    group->reported.low += reported->low;
    group->reported.normal += reported->normal;
    state_dirty_ = true;
  }

  // Wait while another thread writes; when it hands over with our group still
  // queued, become the leader and write it (with whatever joined it).
  write_cv_.wait(lk, [&] { return group->done || !writing_; });
  if (!group->done) {
    // Our group is group_ (only one group waits at a time). The active
    // segment cannot change meanwhile: rolling waits for !writing_.
    writing_ = true;
    Segment& active = segments_.back();
    std::shared_ptr<WriteGroup> g = std::move(group_);
    group_ = std::make_shared<WriteGroup>();
    const uint64_t before = active.written;
    lk.unlock();
    Status s = active.file->Append(g->bytes);
    lk.lock();
    if (s.ok()) {
      active.written += g->bytes.size();
      written_seq_ = g->last_seq;
      g->done = true;
    } else {
      // Undo this group and the one queued behind it: their sequences are
      // given out again, so the log stays gapless.
      std::shared_ptr<WriteGroup> queued = std::move(group_);
      group_ = std::make_shared<WriteGroup>();
      Status t = active.file->Truncate(before);  // the write may have left a prefix
      const uint64_t undo = g->bytes.size() + queued->bytes.size();
      active.size -= undo;
      bytes_ -= undo;
      next_seq_ = g->first_seq;
      for (WriteGroup* w : {g.get(), queued.get()}) {
        pending_drops_.low += w->reported.low;
        pending_drops_.normal += w->reported.normal;
        for (int p = 0; p < 3; ++p) counters_.appended[p] -= w->admitted[p];
        w->status = s;
        w->done = true;
      }
      if (!t.ok()) {
        sticky_ =
            UnavailableError("spool: cannot undo a failed write (" + t.ToString() + "); reopen the spool to repair it");
      }
      MAMORI_LOG(kWarning, "spool " << options_.dir << ": " << s.ToString());
    }
    // Hand over: a thread of the group queued meanwhile (if any) leads next.
    writing_ = false;
    write_cv_.notify_all();
  }
  if (!group->status.ok()) return group->status;
  if (wait_durable) MAMORI_RETURN_IF_ERROR(WaitDurableLocked(lk, seq));
  return seq;
}

Status SpoolImpl::WaitDurableLocked(std::unique_lock<std::mutex>& lk, uint64_t seq) {
  while (durable_seq_ < seq && sticky_.ok() && !closed_) {
    if (commit_thread_.joinable()) {
      commit_wanted_ = true;
      commit_cv_.notify_one();
      durable_cv_.wait(lk);
    } else if (!commit_running_) {
      RunCommitLocked(lk);
    } else {
      durable_cv_.wait(lk);
    }
  }
  if (durable_seq_ >= seq) return Status::Ok();
  return !sticky_.ok() ? sticky_ : FailedPreconditionError("spool: closed");
}

Status SpoolImpl::Sync() {
  std::unique_lock lk(mu_);
  if (closed_) return FailedPreconditionError("spool: closed");
  const uint64_t ticket = commits_started_ + 1;  // the first commit that starts after this call
  while (commits_finished_ < ticket && !closed_) {
    if (commit_thread_.joinable()) {
      commit_wanted_ = true;
      commit_cv_.notify_one();
      durable_cv_.wait(lk);
    } else if (!commit_running_) {
      RunCommitLocked(lk);
    } else {
      durable_cv_.wait(lk);
    }
  }
  return !sticky_.ok() ? sticky_ : last_commit_status_;
}

bool SpoolImpl::CommitNeededLocked() const {
  if (sticky_.ok() && written_seq_ > durable_seq_) return true;
  if (dir_dirty_ || state_dirty_) return true;
  const Segment& active = segments_.back();
  if (state_floor_ < active.first_seq && durable_seq_ + 1 >= active.first_seq) return true;  // floor is stale
  return segments_.size() > 1 && segments_[1].first_seq - 1 <= acked_;                       // a deletable segment
}

void SpoolImpl::RunCommitLocked(std::unique_lock<std::mutex>& lk) {
  commit_running_ = true;
  ++commits_started_;
  commit_wanted_ = false;

  struct ToSync {
    Segment* segment;  // deque elements keep their address; only commits remove segments
    uint64_t upto;
  };
  std::vector<ToSync> to_sync;
  const bool data = sticky_.ok();
  if (data) {
    for (Segment& s : segments_) {
      if (s.file != nullptr && s.written > s.synced) to_sync.push_back({&s, s.written});
    }
  }
  const uint64_t target_seq = data ? written_seq_ : durable_seq_;
  const Position target_pos = data ? Position{segments_.back().first_seq, segments_.back().written} : durable_pos_;
  const bool sync_dir = dir_dirty_ && data;
  if (sync_dir) dir_dirty_ = false;
  const Segment& active = segments_.back();
  const bool write_state =
      state_dirty_ || (data && state_floor_ < active.first_seq && target_seq + 1 >= active.first_seq);
  SpoolState state{acked_, target_seq + 1, pending_drops_.low, pending_drops_.normal};
  if (write_state) state_dirty_ = false;

  lk.unlock();
  Status s;
  for (const ToSync& t : to_sync) {
    s = t.segment->file->Sync();
    if (!s.ok()) break;
  }
  if (s.ok() && sync_dir) s = env_->SyncDir(options_.dir);
  Status state_status;
  if (s.ok() && write_state) state_status = env_->WriteFileAtomically(state_path_, EncodeState(state));
  lk.lock();

  if (!s.ok()) {
    // After a failed fdatasync the kernel may have dropped the dirty pages:
    // nothing written since the last commit can be trusted (see the doc).
    if (sticky_.ok()) sticky_ = UnavailableError("spool: commit failed, reopen the spool: " + s.ToString());
    dir_dirty_ = dir_dirty_ || sync_dir;
    state_dirty_ = state_dirty_ || write_state;
    MAMORI_LOG(kError, "spool " << options_.dir << ": " << s.ToString());
  } else {
    for (const ToSync& t : to_sync) t.segment->synced = std::max(t.segment->synced, t.upto);
    for (Segment& seg : segments_) {
      if (seg.closed && seg.file != nullptr && seg.synced >= seg.written) seg.file.reset();
    }
    if (target_seq >= durable_seq_) {
      durable_seq_ = target_seq;
      durable_pos_ = target_pos;
    }
  }
  if (write_state) {
    if (state_status.ok()) {
      state_floor_ = state.floor;
    } else {
      state_dirty_ = true;
      MAMORI_LOG(kWarning, "spool " << options_.dir << ": state not saved: " << state_status.ToString());
    }
  }

  // Delete whole acknowledged segments (a prefix). This need not wait for the
  // state file: Open counts a missing prefix as acknowledged, so a crash
  // before the state is saved loses nothing, and space comes back even when
  // the state file cannot be written (a full disk).
  std::vector<std::string> doomed;
  while (segments_.size() > 1 && segments_.front().file == nullptr && segments_[1].first_seq - 1 <= acked_) {
    doomed.push_back(segments_.front().path);
    bytes_ -= segments_.front().size;
    segments_.pop_front();
  }
  if (!doomed.empty()) {
    lk.unlock();
    for (const std::string& path : doomed) {
      Status r = env_->RemoveFile(path);
      // Left behind, it is found again at Open, lies below the ack and is removed then.
      if (!r.ok()) MAMORI_LOG(kWarning, "spool: " << r.ToString());
    }
    lk.lock();
  }

  last_commit_status_ = !s.ok() ? s : state_status;
  ++counters_.commits;
  commit_running_ = false;
  ++commits_finished_;
  durable_cv_.notify_all();
  read_cv_.notify_all();
}

void SpoolImpl::CommitThread() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    commit_cv_.wait_for(lk, options_.sync_interval, [&] { return stop_ || commit_wanted_; });
    if (stop_) break;
    if (commit_wanted_ || CommitNeededLocked()) RunCommitLocked(lk);
  }
}

Result<uint64_t> SpoolImpl::AppendDropReport(const std::function<std::string(const DropCounts&)>& make_payload) {
  DropCounts counts;
  {
    std::lock_guard lk(mu_);
    if (closed_) return FailedPreconditionError("spool: closed");
    counts = pending_drops_;
  }
  if (counts.empty()) return kDropped;
  std::string payload = make_payload(counts);
  return AppendFrame(Priority::kCritical, payload, spool_format::kFlagDropReport, /*wait_durable=*/true, &counts);
}

DropCounts SpoolImpl::TakeDropCounts() {
  std::lock_guard lk(mu_);
  DropCounts c = pending_drops_;
  if (!c.empty()) state_dirty_ = true;
  pending_drops_ = {};
  return c;
}

SpoolStats SpoolImpl::GetStats() const {
  std::lock_guard lk(mu_);
  SpoolStats s = counters_;
  s.next_sequence = next_seq_;
  s.durable_sequence = durable_seq_;
  s.handed_out_sequence = handed_out_;
  s.acked_sequence = acked_;
  s.bytes = bytes_;
  s.segments = segments_.size();
  return s;
}

Status SpoolImpl::Close() {
  {
    std::unique_lock lk(mu_);
    if (closed_) return Status::Ok();
    write_cv_.wait(lk, [&] { return !writing_ && group_->bytes.empty(); });
    stop_ = true;
    commit_cv_.notify_all();
  }
  if (commit_thread_.joinable()) commit_thread_.join();
  std::unique_lock lk(mu_);
  durable_cv_.wait(lk, [&] { return !commit_running_; });
  Status s;
  if (!segments_.empty()) {
    state_dirty_ = true;  // save the cursor's acknowledgement and the drop counts
    RunCommitLocked(lk);
    s = !sticky_.ok() ? sticky_ : last_commit_status_;
  }
  closed_ = true;
  for (Segment& seg : segments_) seg.file.reset();
  read_cv_.notify_all();
  durable_cv_.notify_all();
  lk.unlock();
  ResetCursor();
  lock_.reset();
  return s;
}

}  // namespace mamori::telemetry
