// Internal: RFC 822/MIME mail decoding for the scanner (.eml files and mbox).
// Pure functions over bytes in memory; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mamori::scanner::internal {

// True when `data` starts like an mbox ("From " line followed by headers) or an
// RFC 822 message (a block of "Name: value" header lines including at least two
// well-known mail headers such as From, To, Subject, Date, Received,
// Message-ID, MIME-Version, Content-Type, Return-Path). Must be cheap (looks at
// the first few KB only) and must not fire on ordinary text/source files.
bool LooksLikeMail(std::string_view data);

struct MailPart {
  // Display name: the attachment file name (Content-Disposition filename= or
  // Content-Type name=, RFC 2231/2047 decoded when simple), else "part-N" with
  // N the 1-based leaf index in document order. mbox messages are prefixed
  // "msg-K/" (K 1-based) when the input holds more than one message.
  // uuencoded blocks are named by their "begin MODE NAME" line.
  std::string name;
  std::string data;  // decoded bytes (base64, quoted-printable, uuencode, or as-is)
};

struct MailLimits {
  uint64_t max_parts = 10000;          // leaf parts returned, all messages together
  uint64_t max_total_bytes = 400ull << 20;  // decoded bytes returned, all together
  int max_depth = 16;                  // multipart / message/rfc822 nesting
};

struct MailParseResult {
  std::vector<MailPart> parts;
  // Empty when the whole input was decoded. Otherwise the first limit or defect
  // hit: "member-count", "total-size", "depth", or "corrupt: <what>" (e.g. a
  // multipart whose closing boundary is missing still yields the parts seen).
  std::string incomplete;
};

// Splits mbox into messages (lines starting "From " after a blank line or at
// the start), walks MIME multipart trees (any multipart/* subtype, nested
// message/rfc822 parsed recursively), decodes Content-Transfer-Encoding
// base64 / quoted-printable / 7bit / 8bit / binary, and also extracts
// uuencoded blocks ("begin NNN name" ... "end") found in text parts or
// non-MIME bodies. Returns every leaf (text bodies included — scripts arrive
// inline too). Never throws; tolerates malformed input (LF or CRLF line ends,
// bad base64 characters skipped, truncated input).
MailParseResult ParseMail(std::string_view data, const MailLimits& limits);

}  // namespace mamori::scanner::internal
