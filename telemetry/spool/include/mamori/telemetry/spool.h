// The agent's durable telemetry spool: an append-only, crash-safe, bounded
// queue of serialized events on disk between the producers (sensors, scanner,
// rules, responses) and the uplink. See docs/telemetry-spool.md for the
// on-disk format (version 1) and its bump rules.
//
// Delivery is at-least-once: a record leaves the spool only when the server
// acknowledges it (Ack). Each record gets the next per-agent sequence number
// (1, 2, 3, ... never reused); the server stores each (agent, sequence) once.
//
// Durability:
//   - Append returns once the record is in the kernel page cache, so it
//     survives a kill -9 (or crash) of the agent.
//   - A group commit (fdatasync) runs every `sync_interval`, and at once when
//     Sync() or Append(..., wait_durable=true) asks; a power cut keeps every
//     record up to the last completed commit.
//   - ReadBatch hands out only committed records, so the server never holds a
//     sequence that a power cut could take back from the agent.
//
// Bounded size: when `max_bytes` is reached, new kLow records are refused
// first, then kNormal; each refusal is counted (AppendDropReport /
// TakeDropCounts) and Append reports it with kDropped. kCritical records are
// never dropped: they may use `critical_overflow_percent` above the bound,
// beyond which Append fails with kResourceExhausted and the caller keeps them.
//
// Thread safety: Append, AppendDropReport, TakeDropCounts, Sync and GetStats
// may be called from any number of threads at once. ReadBatch, Ack and Rewind
// form the delivery cursor and must be called from one thread at a time (the
// uplink). Close and the destructor require that no other call is running.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::telemetry {

class SpoolEnv;  // file-system seam for fault-injection tests (telemetry/spool/src/env.h)

enum class Priority : uint8_t {
  kLow = 0,       // raw process / file / network activity, heartbeats: dropped first
  kNormal = 1,    // status changes, command results: dropped when the bound is reached
  kCritical = 2,  // alerts, scan findings, quarantine actions, drop reports: never dropped
};

struct SpoolOptions {
  // Folder of the spool, created (0700) when missing. One process at a time:
  // Open fails with kUnavailable while another holds it.
  std::string dir;
  // Bound on the bytes of all segment files (acknowledged records count until
  // their whole segment is deleted).
  uint64_t max_bytes = uint64_t{1} << 30;
  // kLow records are refused once the spool holds this share of max_bytes, so
  // that kNormal and kCritical still find room.
  uint32_t low_limit_percent = 80;
  // kCritical records may exceed max_bytes by this share (the hard ceiling).
  uint32_t critical_overflow_percent = 10;
  // Target size of one segment file; clamped to [4 KiB, max_bytes / 8] so
  // acknowledged space is given back in small enough steps.
  uint64_t segment_bytes = uint64_t{16} << 20;
  // Group commit period. Zero: no background thread; commits happen only in
  // Sync(), Append(wait_durable=true) and Close().
  std::chrono::milliseconds sync_interval{50};
  // Not owned; must outlive the spool. nullptr: the real file system.
  SpoolEnv* env = nullptr;
};

// Low and normal records refused because the spool was full.
struct DropCounts {
  uint64_t low = 0;
  uint64_t normal = 0;
  bool empty() const { return low == 0 && normal == 0; }
};

// Sequences [first, last] that the spool cannot deliver: their bytes are
// damaged or missing on disk. `reason` is a kDataLoss status naming the file
// and offset. The uplink declares them to the server (EventBatch.lost) and
// may acknowledge past them like delivered records.
struct LostRange {
  uint64_t first = 0;
  uint64_t last = 0;
  Status reason;
};

// The result of ReadBatch. A value type (move-only); payload views point into
// the batch's own buffer and stay valid while the batch lives.
class SpoolBatch {
 public:
  struct Record {
    uint64_t sequence;
    Priority priority;
    std::string_view payload;
  };

  SpoolBatch() = default;
  SpoolBatch(SpoolBatch&&) = default;
  SpoolBatch& operator=(SpoolBatch&&) = default;
  SpoolBatch(const SpoolBatch&) = delete;
  SpoolBatch& operator=(const SpoolBatch&) = delete;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty() && lost_.empty(); }
  Record operator[](size_t i) const {
    const Entry& e = entries_[i];
    return {e.sequence, e.priority, std::string_view(data_.data() + e.offset, e.length)};
  }
  const std::vector<LostRange>& lost() const { return lost_; }
  // Highest sequence covered by a record or a lost range; 0 when empty. Ack
  // this value once the server has stored the batch.
  uint64_t last_sequence() const { return last_sequence_; }
  size_t payload_bytes() const { return data_.size(); }

 private:
  friend class SpoolBatchBuilder;
  struct Entry {
    uint64_t sequence;
    Priority priority;
    size_t offset;
    size_t length;
  };
  std::vector<char> data_;  // a vector (not a string) so that moving keeps the views valid
  std::vector<Entry> entries_;
  std::vector<LostRange> lost_;
  uint64_t last_sequence_ = 0;
};

struct SpoolStats {
  uint64_t next_sequence = 0;        // the sequence the next Append gets
  uint64_t durable_sequence = 0;     // every record <= this survives a power cut
  uint64_t handed_out_sequence = 0;  // last sequence returned by ReadBatch (or reached by Ack)
  uint64_t acked_sequence = 0;       // everything <= this is stored by the server
  uint64_t bytes = 0;                // size of all segment files
  uint64_t segments = 0;
  uint64_t appended[3] = {};       // by Priority, since Open
  uint64_t dropped[3] = {};        // by Priority, since Open (critical stays 0)
  uint64_t critical_rejected = 0;  // kCritical appends refused at the hard ceiling
  uint64_t corrupt_records = 0;    // damaged frames or headers found (Open and reads)
  uint64_t lost_sequences = 0;     // sequences reported in LostRange since Open
  uint64_t truncated_bytes = 0;    // torn tail cut off at Open
  uint64_t commits = 0;            // group commits run since Open
};

class Spool {
 public:
  // Sequence returned by Append for a kLow/kNormal record that was dropped
  // (and counted) because the spool is full. Never a real sequence.
  static constexpr uint64_t kDropped = 0;

  // Opens or creates the spool in options.dir, recovering from a crash: a torn
  // record at the end of the last segment is cut off; damaged records
  // elsewhere are kept in place and reported as LostRange when read. Reading
  // resumes at the first unacknowledged record. Errors: kUnavailable (in use
  // by another process), kFailedPrecondition (written by a newer format
  // version), kInvalidArgument (options), I/O errors.
  static Result<std::unique_ptr<Spool>> Open(SpoolOptions options);

  virtual ~Spool() = default;  // implies Close(); its error is logged

  // Appends one record (`payload` is copied; at most 4 MiB). Returns its
  // sequence once the record is in the page cache, and with `wait_durable`
  // once it is also committed to disk. kDropped: full for this priority, the
  // record was dropped and counted; do not retry. Errors: kResourceExhausted
  // for kCritical above the hard ceiling (keep the record, retry after the
  // uplink drains); write errors (nothing of the record stays in the spool;
  // retrying may help, e.g. after ENOSPC); kUnavailable once a commit has
  // failed (the spool must be closed and reopened); kInvalidArgument.
  // With wait_durable, kUnavailable can also mean that the record was written
  // but its commit failed: it may still be delivered (at least once).
  // Latency: Append waits for at most one other thread's write; wait_durable
  // starts a commit at once rather than at the next period.
  virtual Result<uint64_t> Append(Priority priority, std::string_view payload, bool wait_durable = false) = 0;

  // Commits everything appended before the call and persists the
  // acknowledgement and drop counts; returns once done.
  virtual Status Sync() = 0;

  // When drops are pending: calls make_payload(counts) (outside the spool's
  // lock), appends the result as a kCritical record with wait_durable, and
  // subtracts those counts from the pending ones; the reset is atomic with the
  // record across crashes. Returns the record's sequence, or kDropped (0) when
  // nothing was pending. On error the counts stay pending.
  virtual Result<uint64_t> AppendDropReport(const std::function<std::string(const DropCounts&)>& make_payload) = 0;

  // Returns the pending drop counts and resets them. Prefer AppendDropReport:
  // counts taken here are lost if the process dies before the caller has
  // stored them elsewhere.
  virtual DropCounts TakeDropCounts() = 0;

  // --- Delivery cursor (one thread) -------------------------------------

  // Returns the next committed records after the last handed-out one, at
  // most `max_records` and about `max_bytes` of payload (always at least one
  // record when one is available). Waits up to `wait` for a record when none
  // is ready; an empty batch means none arrived in time. Damaged ranges come
  // back as lost(). Errors: read I/O errors (nothing is consumed; retry).
  virtual Result<SpoolBatch> ReadBatch(size_t max_records, size_t max_bytes,
                                       std::chrono::milliseconds wait = std::chrono::milliseconds(0)) = 0;

  // The server has stored every sequence <= `sequence`. Takes effect at once
  // (a later Rewind starts after it); persisted with the next commit, after
  // which wholly acknowledged segments are deleted. An acknowledgement lost
  // in a crash only makes the records be sent again. Acking at or below the
  // current acknowledgement is a no-op. kOutOfRange above durable_sequence.
  virtual Status Ack(uint64_t sequence) = 0;

  // Moves the cursor back to the first unacknowledged record, e.g. after a
  // reconnect: the batches in flight are sent again.
  virtual void Rewind() = 0;

  virtual SpoolStats GetStats() const = 0;

  // Commits, persists state and stops the commit thread. Afterwards every call
  // fails with kFailedPrecondition. REQUIRES: no concurrent call.
  virtual Status Close() = 0;
};

std::string_view PriorityName(Priority p);

}  // namespace mamori::telemetry
