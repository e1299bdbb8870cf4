// The delivery cursor: ReadBatch, Ack, Rewind (the uplink thread).
//
// The cursor reads segment files without the lock, never past the committed
// position it copied under the lock, so it only sees complete frames. In a
// healthy log each frame carries the sequence after the previous one and each
// segment ends where the next begins; any sequence that is missing between
// two good frames (damaged bytes, a damaged header, a segment cut short) is
// handed out as a LostRange naming the file and offset of the damage.
#include <algorithm>

#include "format.h"
#include "mamori/common/log.h"
#include "spool_impl.h"

namespace mamori::telemetry {

using spool_format::kSegmentHeaderSize;

void SpoolImpl::ResetCursor() {
  cursor_.segment = 0;
  cursor_.path.clear();
  cursor_.scanner.reset();
  cursor_.file.reset();
  cursor_.expected = 0;
  cursor_.damage.clear();
}

Result<SpoolBatch> SpoolImpl::ReadBatch(size_t max_records, size_t max_bytes, std::chrono::milliseconds wait) {
  if (max_records == 0) return InvalidArgumentError("spool: ReadBatch of 0 records");
  uint64_t ho = 0;
  uint64_t durable_seq = 0;
  Position durable_pos;
  std::vector<SegmentView> segs;
  {
    std::unique_lock lk(mu_);
    if (closed_) return FailedPreconditionError("spool: closed");
    if (wait.count() > 0) read_cv_.wait_for(lk, wait, [&] { return closed_ || durable_seq_ > handed_out_; });
    if (closed_) return FailedPreconditionError("spool: closed");
    ho = handed_out_;
    durable_seq = durable_seq_;
    durable_pos = durable_pos_;
    if (ho >= durable_seq) return SpoolBatch();
    segs.reserve(segments_.size());
    for (const Segment& s : segments_) {
      if (s.first_seq > durable_pos.first_seq) break;
      segs.push_back({s.first_seq, s.path, s.written, s.unreadable});
    }
  }

  SpoolBatch batch;
  SpoolBatchBuilder builder(&batch);
  uint64_t lost_count = 0;
  uint64_t damaged = 0;
  auto add_lost = [&](uint64_t first, uint64_t last, const std::string& why) {
    first = std::max(first, ho + 1);
    if (first > last) return;
    builder.AddLost(first, last, DataLossError(why));
    lost_count += last - first + 1;
    ho = last;
  };
  // The sequence that follows segment i: the next segment's first, or for the
  // committed end of the log, durable_seq + 1.
  auto region_next = [&](size_t i) {
    return segs[i].first_seq != durable_pos.first_seq && i + 1 < segs.size() ? segs[i + 1].first_seq : durable_seq + 1;
  };
  // Positions the cursor at the start of segment i; false when its header is
  // damaged (its sequences are then reported lost).
  auto open_segment = [&](size_t i) -> Result<bool> {
    ResetCursor();
    const SegmentView& sv = segs[i];
    if (!sv.unreadable) {
      auto file = env_->OpenReadable(sv.path);
      if (!file.ok()) return file.status();
      char header[kSegmentHeaderSize] = {};
      auto got = (*file)->ReadAt(0, header, sizeof header);
      if (!got.ok()) return got.status();
      spool_format::SegmentHeader h;
      if (spool_format::DecodeSegmentHeader(std::string_view(header, *got), &h) == spool_format::HeaderCheck::kOk &&
          h.first_seq == sv.first_seq) {
        cursor_.segment = sv.first_seq;
        cursor_.path = sv.path;
        cursor_.scanner = std::make_unique<SegmentScanner>(file->get(), kSegmentHeaderSize, kSegmentHeaderSize);
        cursor_.file = std::move(*file);
        cursor_.expected = sv.first_seq;
        return true;
      }
      if (cursor_.reported.insert({sv.first_seq, 0}).second) ++damaged;
    }
    add_lost(sv.first_seq, region_next(i) - 1, sv.path + ":0: damaged segment header");
    return false;
  };

  Status io;
  while (batch.size() < max_records && batch.payload_bytes() < max_bytes && ho < durable_seq) {
    size_t idx = segs.size();
    for (size_t i = 0; i < segs.size(); ++i) {
      if (segs[i].first_seq == cursor_.segment) idx = i;
    }
    if (cursor_.scanner == nullptr || idx == segs.size()) {
      // Start (again) at the segment holding ho + 1.
      idx = 0;
      for (size_t i = 0; i < segs.size(); ++i) {
        if (segs[i].first_seq <= ho + 1) idx = i;
      }
      if (segs[idx].first_seq > ho + 1) {
        add_lost(ho + 1, segs[idx].first_seq - 1, segs[idx].path + ": the segments before it are missing");
      }
      auto opened = open_segment(idx);
      if (!opened.ok()) {
        io = opened.status();
        break;
      }
      if (!*opened) continue;
    }
    const SegmentView& sv = segs[idx];
    const bool committed_end = sv.first_seq == durable_pos.first_seq;
    cursor_.scanner->set_limit(committed_end ? durable_pos.offset : sv.size);

    SegmentScanner::Frame f;
    const char* why = nullptr;
    auto step = cursor_.scanner->Next(&f, &why);
    if (!step.ok()) {
      io = step.status();
      break;
    }
    if (*step == SegmentScanner::Step::kFrame) {
      const uint64_t seq = f.header.seq;
      if (seq > ho && batch.size() > 0 && batch.payload_bytes() + f.payload.size() > max_bytes) {
        cursor_.scanner->set_offset(f.offset);  // for the next batch
        break;
      }
      if (seq < cursor_.expected) {  // a valid frame out of order: treat as damage
        if (cursor_.reported.insert({sv.first_seq, f.offset}).second) ++damaged;
        cursor_.damage =
            sv.path + ":" + std::to_string(f.offset) + ": sequence " + std::to_string(seq) + " out of order";
        continue;
      }
      if (seq > cursor_.expected) {
        add_lost(cursor_.expected, seq - 1,
                 !cursor_.damage.empty()
                     ? cursor_.damage
                     : sv.path + ":" + std::to_string(f.offset) + ": sequences " + std::to_string(cursor_.expected) +
                           ".." + std::to_string(seq - 1) + " missing before this frame");
      }
      cursor_.damage.clear();
      cursor_.expected = seq + 1;
      if (seq <= ho) continue;
      builder.AddRecord(seq, static_cast<Priority>(f.header.priority), f.payload);
      ho = seq;
      continue;
    }
    if (*step == SegmentScanner::Step::kEnd) {
      if (committed_end) {
        // The committed log ends here; anything still missing below
        // durable_seq was damaged.
        if (cursor_.expected <= durable_seq && !cursor_.damage.empty()) {
          add_lost(cursor_.expected, durable_seq, cursor_.damage);
          cursor_.expected = durable_seq + 1;
        }
        break;
      }
      const uint64_t next = region_next(idx);
      if (cursor_.expected < next) {
        add_lost(cursor_.expected, next - 1,
                 !cursor_.damage.empty() ? cursor_.damage
                                         : sv.path + ":" + std::to_string(sv.size) + ": segment ends before sequence " +
                                               std::to_string(next - 1));
      }
      if (idx + 1 >= segs.size()) break;
      auto opened = open_segment(idx + 1);
      if (!opened.ok()) {
        io = opened.status();
        break;
      }
      continue;
    }
    // A damaged frame: note it (once per place) and skip to the next good one.
    const uint64_t bad_at = cursor_.scanner->offset();
    cursor_.damage = sv.path + ":" + std::to_string(bad_at) + ": " + why;
    if (cursor_.reported.insert({sv.first_seq, bad_at}).second) {
      ++damaged;
      MAMORI_LOG(kWarning, "spool: " << cursor_.damage << "; skipped");
    }
    auto found = cursor_.scanner->Resync(cursor_.expected - 1);
    if (!found.ok()) {
      io = found.status();
      break;
    }
  }

  std::lock_guard lk(mu_);
  counters_.corrupt_records += damaged;
  if (!io.ok()) {
    ResetCursor();  // nothing of this batch counts as handed out
    return io;
  }
  counters_.lost_sequences += lost_count;
  handed_out_ = std::max(handed_out_, ho);
  return batch;
}

Status SpoolImpl::Ack(uint64_t sequence) {
  std::lock_guard lk(mu_);
  if (closed_) return FailedPreconditionError("spool: closed");
  if (sequence <= acked_) return Status::Ok();
  if (sequence > durable_seq_) {
    return OutOfRangeError("spool: ack of sequence " + std::to_string(sequence) + " beyond the last committed " +
                           std::to_string(durable_seq_));
  }
  acked_ = sequence;
  state_dirty_ = true;
  if (sequence > handed_out_) {  // e.g. the server already holds what we were about to resend
    handed_out_ = sequence;
    ResetCursor();
  }
  return Status::Ok();
}

void SpoolImpl::Rewind() {
  std::lock_guard lk(mu_);
  handed_out_ = acked_;
  ResetCursor();
}

}  // namespace mamori::telemetry
