// SpoolImpl: the segment-file spool behind mamori/telemetry/spool.h.
//
//   spool_impl.cc   appends (leader/follower group writes), commits, Close
//   recovery.cc     Open: state file, segment headers, torn-tail repair
//   cursor.cc       ReadBatch / Ack / Rewind
//
// Concurrency: one mutex (mu_) guards the shared state below. Appenders
// encode frames under mu_ into the current WriteGroup; an appender that finds
// no write in progress becomes the leader and writes the whole group with mu_
// released, while later appenders queue into the next group and wait; when
// the leader is done, one of them leads the next group (leveldb's writer
// queue). At most one group is written and one queued at any time. Commits (fdatasync of the segments, the state file,
// deleting acknowledged segments) run one at a time with mu_ released during I/O, on the commit thread or, without one,
// in the caller of Sync / wait_durable. The delivery cursor (reader_) belongs to the uplink thread and is not guarded;
// it reads files without the lock, up to the committed position it copied under mu_.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "env.h"
#include "mamori/telemetry/spool.h"
#include "segment_scanner.h"
#include "state_file.h"

namespace mamori::telemetry {

class SpoolBatchBuilder {
 public:
  explicit SpoolBatchBuilder(SpoolBatch* batch) : b_(batch) {}
  void AddRecord(uint64_t sequence, Priority priority, std::string_view payload);
  void AddLost(uint64_t first, uint64_t last, Status reason);

 private:
  SpoolBatch* b_;
};

class SpoolImpl final : public Spool {
 public:
  static Result<std::unique_ptr<Spool>> Open(SpoolOptions options);
  ~SpoolImpl() override;

  Result<uint64_t> Append(Priority priority, std::string_view payload, bool wait_durable) override;
  Status Sync() override;
  Result<uint64_t> AppendDropReport(const std::function<std::string(const DropCounts&)>& make_payload) override;
  DropCounts TakeDropCounts() override;
  Result<SpoolBatch> ReadBatch(size_t max_records, size_t max_bytes, std::chrono::milliseconds wait) override;
  Status Ack(uint64_t sequence) override;
  void Rewind() override;
  SpoolStats GetStats() const override;
  Status Close() override;

 private:
  struct Segment {
    uint64_t first_seq = 0;
    std::string path;
    uint64_t size = 0;        // bytes in the file plus frames admitted but not yet written
    uint64_t written = 0;     // bytes in the file
    uint64_t synced = 0;      // bytes known to be on disk (fdatasync)
    bool closed = false;      // no more appends (every segment but the last)
    bool unreadable = false;  // damaged header: its sequences are reported lost
    // The active segment's handle; a closed segment keeps it until committed.
    std::unique_ptr<WritableFile> file;
  };
  // Frames written by the leader with one WritableFile::Append.
  struct WriteGroup {
    std::string bytes;
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;
    DropCounts reported;        // drop counts the drop reports in this group took
    uint64_t admitted[3] = {};  // frames by priority (to undo the counters)
    bool done = false;          // guarded by mu_
    Status status;              // guarded by mu_; valid once done
  };
  // Where committed records end: segment `first_seq`, byte `offset`.
  struct Position {
    uint64_t first_seq = 0;
    uint64_t offset = 0;
  };
  // A copy of a segment's description for the cursor.
  struct SegmentView {
    uint64_t first_seq;
    std::string path;
    uint64_t size;
    bool unreadable;
  };
  // The delivery cursor. Owned by the uplink thread.
  struct Cursor {
    uint64_t segment = 0;  // first_seq of the segment being read; 0: pick one
    std::string path;
    std::unique_ptr<ReadableFile> file;
    std::unique_ptr<SegmentScanner> scanner;
    uint64_t expected = 0;                             // sequence the next frame of this segment should carry
    std::string damage;                                // "file:offset: why" of damage seen since the last good frame
    std::set<std::pair<uint64_t, uint64_t>> reported;  // (segment, offset) of damage already counted
  };

  explicit SpoolImpl(SpoolOptions options);

  // recovery.cc
  Status Recover();
  Status CreateSegmentLocked(uint64_t first_seq);

  // spool_impl.cc
  Result<uint64_t> AppendFrame(Priority priority, std::string_view payload, uint8_t flags, bool wait_durable,
                               const DropCounts* reported);
  uint64_t LimitFor(Priority priority) const;
  Status WaitDurableLocked(std::unique_lock<std::mutex>& lk, uint64_t seq);
  // REQUIRES: mu_ held by lk, !commit_running_. Releases mu_ during I/O.
  void RunCommitLocked(std::unique_lock<std::mutex>& lk);
  bool CommitNeededLocked() const;
  void CommitThread();

  // cursor.cc
  void ResetCursor();

  // Constant after Open.
  const SpoolOptions options_;
  SpoolEnv* const env_;
  uint64_t segment_bytes_ = 0;
  uint64_t low_limit_ = 0;
  uint64_t ceiling_ = 0;
  std::string state_path_;
  std::unique_ptr<FileLock> lock_;

  mutable std::mutex mu_;
  std::condition_variable write_cv_;    // a group was written or writing_ cleared
  std::condition_variable commit_cv_;   // commit_wanted_ or stop_ set (commit thread)
  std::condition_variable durable_cv_;  // a commit finished
  std::condition_variable read_cv_;     // durable_seq_ advanced or the spool closed

  // Guarded by mu_.
  std::deque<Segment> segments_;  // oldest first; back() is the active segment
  uint64_t bytes_ = 0;            // sum of Segment::size
  uint64_t next_seq_ = 1;
  uint64_t written_seq_ = 0;  // every sequence <= this is in a file
  uint64_t durable_seq_ = 0;  // every sequence <= this is committed
  Position durable_pos_;
  bool writing_ = false;               // a leader is writing groups
  std::shared_ptr<WriteGroup> group_;  // frames waiting for the leader
  bool commit_running_ = false;
  bool commit_wanted_ = false;
  bool stop_ = false;
  bool closed_ = false;
  uint64_t commits_started_ = 0;
  uint64_t commits_finished_ = 0;
  bool dir_dirty_ = false;    // a segment was created since the last directory fsync
  bool state_dirty_ = false;  // acked_ or pending_drops_ changed since the state file was written
  uint64_t state_floor_ = 0;  // floor in the state file on disk
  uint64_t acked_ = 0;
  uint64_t handed_out_ = 0;
  DropCounts pending_drops_;
  Status sticky_;  // set when a commit or a rollback failed; appends stop
  Status last_commit_status_;
  SpoolStats counters_;  // the counting fields only

  // Owned by the uplink thread (ReadBatch, Ack, Rewind).
  Cursor cursor_;

  std::thread commit_thread_;
};

}  // namespace mamori::telemetry
