// SegmentScanner: reads the frames of one segment file in order through a
// buffer, checking each, and finds the next good frame after damage.
// Used by recovery at Open and by the delivery cursor.
//
// Thread safety: one thread at a time. Not owning `file` (must outlive this).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "env.h"
#include "format.h"

namespace mamori::telemetry {

class SegmentScanner {
 public:
  // Frames are read from `start` up to `limit` (exclusive); bytes beyond
  // `limit` are never looked at.
  SegmentScanner(ReadableFile* file, uint64_t start, uint64_t limit);

  struct Frame {
    uint64_t offset = 0;  // of the frame header
    spool_format::FrameHeader header;
    std::string_view payload;  // valid until the next call on this scanner
  };
  enum class Step {
    kFrame,  // *frame holds the frame at the old offset(); offset() is past it
    kEnd,    // offset() == limit()
    kBad,    // no valid frame at offset() (unchanged); *why says what is wrong
  };
  // Errors are read failures only.
  Result<Step> Next(Frame* frame, const char** why);

  // Searches from offset() + 1 for the next frame that is fully valid and
  // carries a sequence > min_seq, and moves there. false: none before the
  // limit; offset() is then limit().
  Result<bool> Resync(uint64_t min_seq);

  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }
  uint64_t limit() const { return limit_; }
  void set_limit(uint64_t limit) { limit_ = limit; }

 private:
  // Makes bytes [off, off + n) of the file available at Data(off). false:
  // the file ends before (or they lie beyond the limit).
  Result<bool> Fill(uint64_t off, size_t n);
  const char* Data(uint64_t off) const { return buf_.data() + (off - buf_start_); }
  // True when a valid frame with sequence > min_seq starts at `off`.
  Result<bool> ValidFrameAt(uint64_t off, uint64_t min_seq);

  ReadableFile* const file_;
  uint64_t offset_;
  uint64_t limit_;
  std::vector<char> buf_;
  uint64_t buf_start_ = 0;
  size_t buf_len_ = 0;
};

}  // namespace mamori::telemetry
