#include "segment_scanner.h"

#include <algorithm>
#include <cstring>

namespace mamori::telemetry {
namespace {
constexpr size_t kChunk = 256 << 10;
}  // namespace

using spool_format::kFrameHeaderSize;

SegmentScanner::SegmentScanner(ReadableFile* file, uint64_t start, uint64_t limit)
    : file_(file), offset_(start), limit_(limit) {}

Result<bool> SegmentScanner::Fill(uint64_t off, size_t n) {
  if (off + n > limit_) return false;
  if (off >= buf_start_ && off + n <= buf_start_ + buf_len_) return true;
  size_t want = static_cast<size_t>(std::min<uint64_t>(std::max(n, kChunk), limit_ - off));
  if (buf_.size() < want) buf_.resize(want);
  auto got = file_->ReadAt(off, buf_.data(), want);
  if (!got.ok()) return got.status();
  buf_start_ = off;
  buf_len_ = *got;
  return buf_len_ >= n;
}

Result<SegmentScanner::Step> SegmentScanner::Next(Frame* frame, const char** why) {
  if (offset_ >= limit_) return Step::kEnd;
  auto have = Fill(offset_, kFrameHeaderSize);
  if (!have.ok()) return have.status();
  if (!*have) {
    *why = "truncated frame header";
    return Step::kBad;
  }
  spool_format::FrameHeader h;
  if (!spool_format::DecodeFrameHeader(Data(offset_), &h, why)) return Step::kBad;
  size_t total = kFrameHeaderSize + h.payload_len;
  have = Fill(offset_, total);
  if (!have.ok()) return have.status();
  if (!*have) {
    *why = "frame extends past the end";
    return Step::kBad;
  }
  std::string_view payload(Data(offset_) + kFrameHeaderSize, h.payload_len);
  if (!spool_format::FrameChecksumMatches(Data(offset_), payload, h)) {
    *why = "checksum mismatch";
    return Step::kBad;
  }
  frame->offset = offset_;
  frame->header = h;
  frame->payload = payload;
  offset_ += total;
  return Step::kFrame;
}

Result<bool> SegmentScanner::ValidFrameAt(uint64_t off, uint64_t min_seq) {
  auto have = Fill(off, kFrameHeaderSize);
  if (!have.ok() || !*have) return have;
  spool_format::FrameHeader h;
  const char* why = nullptr;
  if (!spool_format::DecodeFrameHeader(Data(off), &h, &why) || h.seq <= min_seq) return false;
  have = Fill(off, kFrameHeaderSize + h.payload_len);
  if (!have.ok() || !*have) return have;
  return spool_format::FrameChecksumMatches(Data(off), std::string_view(Data(off) + kFrameHeaderSize, h.payload_len),
                                            h);
}

Result<bool> SegmentScanner::Resync(uint64_t min_seq) {
  char magic[4];
  spool_format::PutU32(magic, spool_format::kFrameMagic);
  uint64_t pos = offset_ + 1;
  while (pos + kFrameHeaderSize <= limit_) {
    size_t window = static_cast<size_t>(std::min<uint64_t>(kChunk, limit_ - pos));
    auto have = Fill(pos, window);
    if (!have.ok()) return have.status();
    if (!*have) break;  // the file is shorter than the limit
    const char* base = Data(pos);
    const void* hit = ::memmem(base, window, magic, sizeof magic);
    if (hit == nullptr) {
      pos += window - (sizeof magic - 1);  // a magic may straddle the window's end
      continue;
    }
    uint64_t cand = pos + static_cast<uint64_t>(static_cast<const char*>(hit) - base);
    auto ok = ValidFrameAt(cand, min_seq);
    if (!ok.ok()) return ok.status();
    if (*ok) {
      offset_ = cand;
      return true;
    }
    pos = cand + 1;
  }
  offset_ = limit_;
  return false;
}

}  // namespace mamori::telemetry
