// RFC 822 / MIME / mbox decoding for the scanner; the contract is in mail.h.
//
// The input may be hostile, so everything works on string_views into the
// caller's buffer and touches each byte a bounded number of times: a
// multipart level scans its own body once and nesting is capped, which keeps
// the worst case at O(depth * size) with no recursion beyond the depth cap.
#include "mail.h"

#include <algorithm>
#include <bit>
#include <exception>
#include <iterator>
#include <map>
#include <utility>

namespace mamori::scanner::internal {
namespace {

// Ceiling on nesting whatever MailLimits says: the walker recurses once per
// level and a caller-supplied huge max_depth must not blow the stack.
constexpr int kDepthCeiling = 64;
// Only Content-Type / -Transfer-Encoding / -Disposition are kept, and what
// matters in them (boundary, file name) is short; the cap bounds memory per
// level against absurd folded headers.
constexpr size_t kMaxHeaderValue = 64 * 1024;
constexpr size_t kMaxNameBytes = 255;
constexpr size_t kSniffBytes = 4096;

// Headers LooksLikeMail counts. The first kGenericMailHeaders also occur in
// HTTP responses, so one of the others is required too, unless MIME-Version
// and Content-Type together show a MIME document (mail clients open .eml
// files that have nothing else, so attackers can send them).
constexpr std::string_view kMailHeaders[] = {
    "date", "mime-version", "content-type", "content-transfer-encoding", "from", "to", "cc",
    "subject", "received", "message-id", "return-path", "reply-to", "delivered-to",
    "in-reply-to", "references", "x-mailer", "sender", "dkim-signature", "x-original-to",
    "envelope-to", "arc-seal", "authentication-results", "x-received", "thread-topic"};
constexpr int kGenericMailHeaders = 4;

bool IsWsp(char c) { return c == ' ' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ToLower(c);
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view Trim(std::string_view s) {
  const size_t begin = std::min(s.find_first_not_of(" \t\r\n"), s.size());
  return s.substr(begin, s.find_last_not_of(" \t\r\n") + 1 - begin);  // all blank: empty
}

int HexValue(char c) {
  c = ToLower(c);
  return IsDigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

// The byte written as two hex digits after s[i] ("=41", "%41"), or -1.
int EscapedByte(std::string_view s, size_t i) {
  if (i + 2 >= s.size()) return -1;
  int hi = HexValue(s[i + 1]);
  int lo = HexValue(s[i + 2]);
  return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
}

// Drops one trailing line break: the CRLF before a boundary delimiter, and
// the blank line mbox writers add after each message, belong to the framing.
std::string_view StripOneEol(std::string_view s) {
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

// Length of the line break at `i` ("\n" or "\r\n"), 0 if none.
size_t EolAt(std::string_view s, size_t i) {
  if (i < s.size() && s[i] == '\n') return 1;
  return (i + 1 < s.size() && s[i] == '\r' && s[i + 1] == '\n') ? 2 : 0;
}

// Iterates lines, accepting both LF and CRLF (and a last line without one).
class LineReader {
 public:
  explicit LineReader(std::string_view data) : data_(data) {}

  // Yields the next line without its line break; false at end of data.
  bool Next(std::string_view* line) {
    if (pos_ >= data_.size()) return false;
    start_ = pos_;
    const size_t nl = std::min(data_.find('\n', pos_), data_.size());  // memchr
    pos_ = nl < data_.size() ? nl + 1 : nl;
    const size_t end = nl > start_ && data_[nl - 1] == '\r' ? nl - 1 : nl;
    *line = data_.substr(start_, end - start_);
    return true;
  }
  size_t line_start() const { return start_; }
  size_t pos() const { return pos_; }  // just past the current line break

 private:
  std::string_view data_;
  size_t pos_ = 0;
  size_t start_ = 0;
};

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (IsDigit(c)) return c - '0' + 52;
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

// Bytes outside the alphabet (line breaks, junk) are skipped. '=' closes the
// current quantum rather than the stream, so concatenated blobs still decode,
// and missing padding is fine. A lone leftover sextet cannot hold a byte: the
// data was cut, which is the only truncation base64 itself reveals.
std::string DecodeBase64(std::string_view in, bool* truncated) {
  std::string out;
  out.reserve(in.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int count = 0;
  auto flush = [&] {
    if (count == 1) *truncated = true;
    if (count >= 2) out.push_back(static_cast<char>(acc >> (count == 2 ? 4 : 10)));
    if (count == 3) out.push_back(static_cast<char>(acc >> 2));
    acc = 0;
    count = 0;
  };
  for (char c : in) {
    int v = Base64Value(c);
    if (v < 0) {
      if (c == '=') flush();
      continue;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    if (++count == 4) {
      for (int shift = 16; shift >= 0; shift -= 8) out.push_back(static_cast<char>(acc >> shift));
      acc = 0;
      count = 0;
    }
  }
  flush();
  return out;
}

// RFC 2045 6.7. Bad escapes are kept literally, as most readers do.
std::string DecodeQuotedPrintable(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    if (c == '=') {
      size_t j = i + 1;
      while (j < in.size() && IsWsp(in[j])) ++j;
      if (j == in.size() || EolAt(in, j) > 0) {  // soft line break
        i = j + EolAt(in, j);
        continue;
      }
      const int byte = EscapedByte(in, i);
      out.push_back(byte >= 0 ? static_cast<char>(byte) : '=');
      i += byte >= 0 ? 3 : 1;
    } else if (IsWsp(c)) {
      // Trailing whitespace was added in transport and must go; the run is
      // consumed whole so each byte is looked at once.
      size_t j = i;
      while (j < in.size() && IsWsp(in[j])) ++j;
      if (j < in.size() && EolAt(in, j) == 0) out.append(in.substr(i, j - i));
      i = j;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

// %XX (RFC 2231) or =XX with '_' for space (RFC 2047 "Q").
std::string Unescape(std::string_view in, char escape) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    const int byte = in[i] == escape ? EscapedByte(in, i) : -1;
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
      i += 2;
    } else {
      out.push_back(escape == '=' && in[i] == '_' ? ' ' : in[i]);
    }
  }
  return out;
}

// Parses "=?charset?B|Q?text?=" at `start`; returns the index just past it,
// or 0 when it is not a well-formed encoded word.
size_t ParseEncodedWord(std::string_view s, size_t start, std::string* out) {
  const size_t p = start + 2;
  size_t q1 = p;
  while (q1 < s.size() && s[q1] != '?' && q1 - p <= 64) ++q1;
  if (q1 == p || q1 + 2 >= s.size() || s[q1] != '?' || s[q1 + 2] != '?') return 0;
  const char enc = ToLower(s[q1 + 1]);
  if (enc != 'b' && enc != 'q') return 0;
  size_t q3 = q1 + 3;
  while (q3 < s.size() && s[q3] != '?' && !IsWsp(s[q3])) ++q3;
  if (q3 + 1 >= s.size() || s[q3] != '?' || s[q3 + 1] != '=') return 0;
  // The charset is not converted: names are for display, and UTF-8 (which
  // needs nothing) is what current mailers send.
  const std::string_view text = s.substr(q1 + 3, q3 - q1 - 3);
  bool ignored = false;
  *out = enc == 'b' ? DecodeBase64(text, &ignored) : Unescape(text, '=');
  return q3 + 2;
}

// RFC 2047 encoded words. Also applied to parameter values because Outlook
// and others put encoded words inside quoted filename= despite the RFC.
std::string DecodeEncodedWords(std::string_view s) {
  std::string out;
  size_t i = 0;
  bool after_word = false;
  while (i < s.size()) {
    const size_t start = s.find("=?", i);
    if (start == std::string_view::npos) {
      out.append(s.substr(i));
      break;
    }
    std::string decoded;
    const size_t end = ParseEncodedWord(s, start, &decoded);
    const std::string_view gap = s.substr(i, start - i);
    // Whitespace between two adjacent encoded words is folding, not content.
    if (end == 0 || !after_word || !Trim(gap).empty()) out.append(gap);
    out += end == 0 ? "=?" : decoded;
    i = end == 0 ? start + 2 : end;
    after_word = end != 0;
  }
  return out;
}

// "Name:" with a printable-ASCII name; obsolete "Name :" is accepted too.
bool IsHeaderLine(std::string_view line, size_t* colon) {
  size_t i = 0;
  while (i < line.size() && line[i] > ' ' && line[i] < 127 && line[i] != ':') ++i;
  if (i == 0) return false;
  while (i < line.size() && IsWsp(line[i])) ++i;
  if (i >= line.size() || line[i] != ':') return false;
  *colon = i;
  return true;
}

struct EntityHeaders {
  std::string content_type;
  std::string transfer_encoding;
  std::string disposition;
};

// Reads the header block and returns where the body starts. A line that is
// neither a header nor a continuation ends the block even without the blank
// line: sloppy generators omit it, and that text must not vanish.
size_t ParseHeaders(std::string_view entity, EntityHeaders* out) {
  LineReader reader(entity);
  std::string_view line;
  bool in_block = false;
  std::string* current = nullptr;  // null while inside a header we ignore
  while (reader.Next(&line)) {
    if (line.empty()) return reader.pos();
    size_t colon = 0;
    std::string_view value = line;  // a continuation line is all value
    if (!IsWsp(line[0]) || !in_block) {
      if (!IsHeaderLine(line, &colon)) return reader.line_start();
      in_block = true;
      const std::string name = Lowercase(Trim(line.substr(0, colon)));
      current = name == "content-type"                ? &out->content_type
                : name == "content-transfer-encoding" ? &out->transfer_encoding
                : name == "content-disposition"       ? &out->disposition
                                                      : nullptr;
      if (current && !current->empty()) current = nullptr;  // the first one wins
      value = line.substr(colon + 1);
    }
    if (current && current->size() < kMaxHeaderValue) {
      current->append(value.substr(0, kMaxHeaderValue - current->size()));
    }
  }
  return entity.size();
}

struct Param {
  std::string name;   // lowercased
  std::string value;  // unquoted, not yet decoded
};

struct HeaderField {
  std::string value;  // lowercased main value, e.g. "multipart/mixed"
  std::vector<Param> params;
};

HeaderField ParseField(std::string_view h) {
  HeaderField field;
  size_t i = std::min(h.find(';'), h.size());
  field.value = Lowercase(Trim(h.substr(0, i)));
  while (i < h.size()) {  // h[i] == ';' here
    const size_t name_start = ++i;
    while (i < h.size() && h[i] != '=' && h[i] != ';') ++i;
    std::string name = Lowercase(Trim(h.substr(name_start, i - name_start)));
    if (i >= h.size() || h[i] == ';') continue;
    ++i;
    while (i < h.size() && IsWsp(h[i])) ++i;
    std::string value;
    if (i < h.size() && h[i] == '"') {
      for (++i; i < h.size() && h[i] != '"'; ++i) {
        if (h[i] == '\\' && i + 1 < h.size()) ++i;
        value.push_back(h[i]);
      }
      while (i < h.size() && h[i] != ';') ++i;
    } else {
      const size_t value_start = i;
      while (i < h.size() && h[i] != ';') ++i;
      value = Trim(h.substr(value_start, i - value_start));
    }
    if (!name.empty()) field.params.push_back({std::move(name), std::move(value)});
  }
  return field;
}

// Value of parameter `key`. The RFC 2231 forms (key*=charset'lang'%XX.. and
// the key*0= / key*1*= continuations long names get) win over the plain one,
// which gets RFC 2047 decoding. Charsets are ignored as for encoded words.
std::string GetParam(const HeaderField& field, std::string_view key) {
  const Param* plain = nullptr;
  std::map<int, std::string> segments;  // by index; the first of duplicates wins
  for (const Param& p : field.params) {
    if (p.name == key && !plain) plain = &p;
    std::string_view suffix = std::string_view(p.name).substr(std::min(key.size(), p.name.size()));
    if (!StartsWith(p.name, key) || !StartsWith(suffix, "*")) continue;
    suffix.remove_prefix(1);
    const bool encoded = suffix.empty() || suffix.back() == '*';
    if (!suffix.empty() && suffix.back() == '*') suffix.remove_suffix(1);
    if (suffix.size() > 2 || !std::all_of(suffix.begin(), suffix.end(), IsDigit)) continue;
    int index = 0;
    for (char c : suffix) index = index * 10 + (c - '0');
    std::string_view value = p.value;
    if (encoded && index == 0) {  // strip charset'language'
      const size_t q1 = value.find('\'');
      const size_t q2 = q1 == std::string_view::npos ? q1 : value.find('\'', q1 + 1);
      if (q2 != std::string_view::npos) value.remove_prefix(q2 + 1);
    }
    segments.emplace(index, encoded ? Unescape(value, '%') : std::string(value));
  }
  if (segments.empty()) return plain ? DecodeEncodedWords(plain->value) : "";
  std::string joined;
  for (const auto& [index, segment] : segments) joined += segment;
  return joined;
}

// Names are for display and end up as the last component of the scanner's
// "container!member" paths: drop any directory a sender put in, and control
// bytes that could forge log lines.
std::string SanitizeName(std::string_view raw) {
  const size_t slash = raw.find_last_of("/\\");
  if (slash != std::string_view::npos) raw.remove_prefix(slash + 1);
  std::string name(Trim(raw));
  for (char& c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
  }
  if (name.size() > kMaxNameBytes) {
    size_t cut = kMaxNameBytes;  // do not split a UTF-8 sequence
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
    name.resize(cut);
  }
  if (name == "." || name == "..") name.clear();
  return name;
}

// "begin 644 name" (3 or 4 octal digits), returning the name.
bool ParseBeginLine(std::string_view line, std::string_view* name) {
  if (!StartsWith(line, "begin ")) return false;
  const std::string_view rest = line.substr(6);
  size_t digits = 0;
  while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '7') ++digits;
  if (digits < 3 || digits > 4 || digits >= rest.size() || rest[digits] != ' ') return false;
  *name = Trim(rest.substr(digits + 1));
  return !name->empty();
}

// A data line: a length character, then 4 characters per 3 bytes, all in
// ' '..'`'. Trailing spaces may have been eaten in transit and some encoders
// append a checksum, hence the slack; prose fails the character test.
bool IsUuLine(std::string_view line) {
  if (line.empty() ||
      std::any_of(line.begin(), line.end(), [](char c) { return c < ' ' || c > '`'; })) {
    return false;
  }
  const size_t needed = (((line[0] - ' ') & 63) + 2) / 3 * 4;
  const size_t have = line.size() - 1;
  return have + 4 >= needed && have <= needed + 4;
}

void AppendUuLine(std::string_view line, std::string* out) {
  const size_t length = (line[0] - ' ') & 63;
  auto sextet = [&](size_t i) -> uint32_t {
    return i < line.size() ? static_cast<uint32_t>((line[i] - ' ') & 63) : 0;
  };
  for (size_t i = 1, produced = 0; produced < length; i += 4) {
    const uint32_t v = sextet(i) << 18 | sextet(i + 1) << 12 | sextet(i + 2) << 6 | sextet(i + 3);
    for (int shift = 16; shift >= 0 && produced < length; shift -= 8, ++produced) {
      out->push_back(static_cast<char>(v >> shift));
    }
  }
}

std::vector<MailPart> ExtractUuencoded(std::string_view text, bool* truncated) {
  std::vector<MailPart> files;
  if (text.find("begin ") == std::string_view::npos) return files;
  LineReader reader(text);
  std::string_view line;
  while (reader.Next(&line)) {
    std::string_view name;
    if (!ParseBeginLine(line, &name)) continue;
    MailPart file{SanitizeName(name), ""};
    bool saw_data = false;
    bool saw_terminator = false;  // the zero-length "`" line: data complete
    while (reader.Next(&line)) {
      if (Trim(line) == "end" || (saw_terminator && !line.empty())) break;
      if (line.empty() || ((line[0] - ' ') & 63) == 0) {
        saw_terminator = true;
        continue;
      }
      if (!IsUuLine(line)) break;
      AppendUuLine(line, &file.data);
      saw_data = true;
    }
    const bool ended = Trim(line) == "end";
    // Prose such as "begin 644 rows" followed by text is not a block.
    if (!saw_data && !ended) continue;
    *truncated |= !saw_terminator && !ended;
    files.push_back(std::move(file));
  }
  return files;
}

// "From <sender> <asctime date>" as in RFC 4155. Requiring an HH:MM time keeps
// unquoted body lines like "From 2019 on, ..." from splitting messages.
bool IsMboxSeparator(std::string_view line) {
  if (!StartsWith(line, "From ")) return false;
  const std::string_view rest = line.substr(5);
  const size_t sender_end = rest.find(' ');
  if (sender_end == 0 || sender_end == std::string_view::npos) return false;
  for (size_t i = sender_end + 1; i + 2 < rest.size(); ++i) {
    if (rest[i] == ':' && IsDigit(rest[i - 1]) && IsDigit(rest[i + 1]) && IsDigit(rest[i + 2])) {
      return true;
    }
  }
  return false;
}

// Cuts the next message (without its "From " line) off the front of an mbox.
// Messages are taken one at a time so that an mbox of millions of tiny
// messages costs nothing past the parts limit.
std::string_view NextMboxMessage(std::string_view* mbox) {
  LineReader reader(*mbox);
  std::string_view line;
  reader.Next(&line);  // the "From " line
  const size_t body = reader.pos();
  bool prev_blank = false;
  while (reader.Next(&line)) {
    if (prev_blank && IsMboxSeparator(line)) {
      const std::string_view message = StripOneEol(mbox->substr(body, reader.line_start() - body));
      mbox->remove_prefix(reader.line_start());
      return message;
    }
    prev_blank = line.empty();
  }
  const std::string_view message = mbox->substr(body);
  *mbox = {};
  return prev_blank ? StripOneEol(message) : message;  // writers end every message so
}

// Decodes a Content-Transfer-Encoding into *out; false for the identity
// encodings (7bit, 8bit, binary, unknown), where the body is used as is.
bool DecodeTransfer(std::string_view body, std::string_view encoding, std::string* out,
                    bool* truncated) {
  if (encoding == "base64") *out = DecodeBase64(body, truncated);
  if (encoding == "quoted-printable") *out = DecodeQuotedPrintable(body);
  return encoding == "base64" || encoding == "quoted-printable";
}

class Walker {
 public:
  Walker(const MailLimits& limits, MailParseResult* result)
      : limits_(limits),
        result_(result),
        max_depth_(std::clamp(limits.max_depth, 0, kDepthCeiling)) {}

  void ParseMessage(std::string_view message, std::string prefix) {
    prefix_ = std::move(prefix);
    leaf_index_ = 0;
    ParseEntity(message, 0, false);
  }

  bool stopped() const { return stopped_; }

 private:
  void Flag(std::string_view what) {
    if (result_->incomplete.empty()) result_->incomplete = what;
  }
  void Stop(std::string_view what) {
    Flag(what);
    stopped_ = true;
  }

  // `depth` counts the multipart / message containers around `entity`.
  // An empty entity (back-to-back delimiters, empty mbox message) has no
  // leaves; emitting nothing keeps such floods from eating the parts limit.
  void ParseEntity(std::string_view entity, int depth, bool in_digest) {
    if (stopped_ || entity.empty()) return;
    EntityHeaders headers;
    const std::string_view body = entity.substr(ParseHeaders(entity, &headers));
    HeaderField type = ParseField(headers.content_type);
    if (type.value.find('/') == std::string::npos) {  // absent or invalid: RFC 2045 5.2
      type.value = in_digest ? "message/rfc822" : "text/plain";
    }
    const std::string encoding = Lowercase(Trim(headers.transfer_encoding));
    const bool multipart = StartsWith(type.value, "multipart/");
    if (multipart || type.value == "message/rfc822" || type.value == "message/global") {
      if (depth >= max_depth_) return Flag("depth");
      if (!multipart) return ParseEncapsulated(body, encoding, depth + 1);
      const bool digest = type.value == "multipart/digest";
      if (ParseMultipart(body, GetParam(type, "boundary"), depth + 1, digest)) return;
      // No delimiter at all: hand the body over as text so nothing hides.
      Flag("corrupt: multipart boundary not found");
      type.value = "text/plain";
    }
    EmitLeaf(body, headers, type, encoding);
  }

  // message/rfc822 ought to be 7bit, but base64-wrapped ones exist. Decoded
  // copies stay alive while their subtree is walked; capping their sum at
  // max_total_bytes too keeps nested re-encodings from piling up in memory.
  void ParseEncapsulated(std::string_view body, const std::string& encoding, int depth) {
    std::string decoded;
    bool truncated = false;
    const bool transformed = DecodeTransfer(body, encoding, &decoded, &truncated);
    if (truncated) Flag("corrupt: truncated base64");
    if (decoded.size() > limits_.max_total_bytes - scratch_bytes_) return Stop("total-size");
    scratch_bytes_ += decoded.size();
    ParseEntity(transformed ? std::string_view(decoded) : body, depth, false);
    scratch_bytes_ -= decoded.size();
  }

  // Returns false when not a single delimiter line was found.
  bool ParseMultipart(std::string_view body, std::string_view boundary, int depth, bool digest) {
    if (boundary.empty()) return false;
    LineReader reader(body);
    std::string_view line;
    size_t part_start = std::string_view::npos;  // npos while in the preamble
    while (!stopped_ && reader.Next(&line)) {
      if (!StartsWith(line, "--") || line.substr(2, boundary.size()) != boundary) continue;
      const std::string_view after = line.substr(boundary.size() + 2);
      const bool closing = StartsWith(after, "--");
      // "--b" followed by other text is a different, longer boundary.
      if (!closing && !Trim(after).empty()) continue;
      if (part_start != std::string_view::npos) {
        ParseEntity(StripOneEol(body.substr(part_start, reader.line_start() - part_start)), depth,
                    digest);
      }
      if (closing) return true;
      part_start = reader.pos();
    }
    if (part_start == std::string_view::npos) return stopped_;
    ParseEntity(body.substr(part_start), depth, digest);
    if (!stopped_) Flag("corrupt: missing closing boundary");
    return true;
  }

  void EmitLeaf(std::string_view body, const EntityHeaders& headers, const HeaderField& type,
                const std::string& encoding) {
    std::string data;
    bool truncated = false;
    if (!DecodeTransfer(body, encoding, &data, &truncated)) data.assign(body);
    if (truncated) Flag("corrupt: truncated base64");
    std::string name = GetParam(ParseField(headers.disposition), "filename");
    if (name.empty()) name = GetParam(type, "name");
    // Old mailers put uuencoded files into text bodies (or label the part
    // x-uuencode); those files are what the scanner needs to see.
    std::vector<MailPart> uu;
    bool uu_truncated = false;
    if (StartsWith(type.value, "text/") || encoding.find("uu") != std::string::npos) {
      uu = ExtractUuencoded(data, &uu_truncated);
    }
    if (uu_truncated) Flag("corrupt: truncated uuencode");
    if (!Emit(SanitizeName(name), std::move(data))) return;
    for (MailPart& file : uu) {
      if (!Emit(std::move(file.name), std::move(file.data))) return;
    }
  }

  bool Emit(std::string name, std::string data) {
    if (stopped_) return false;
    ++leaf_index_;
    if (result_->parts.size() >= limits_.max_parts) Stop("member-count");
    if (data.size() > limits_.max_total_bytes - total_bytes_) Stop("total-size");
    if (stopped_) return false;
    total_bytes_ += data.size();
    if (name.empty()) name = "part-" + std::to_string(leaf_index_);
    result_->parts.push_back({prefix_ + name, std::move(data)});
    return true;
  }

  const MailLimits& limits_;
  MailParseResult* result_;
  const int max_depth_;
  std::string prefix_;
  uint64_t leaf_index_ = 0;
  uint64_t total_bytes_ = 0;    // returned bytes, never above max_total_bytes
  uint64_t scratch_bytes_ = 0;  // live decoded message/rfc822 copies
  bool stopped_ = false;
};

}  // namespace

bool LooksLikeMail(std::string_view data) {
  std::string_view window = data.substr(0, kSniffBytes);
  // A line cut by the window end says nothing; drop it.
  if (data.size() > window.size()) window = window.substr(0, window.rfind('\n') + 1);
  LineReader reader(window);
  std::string_view line;
  const bool mbox = reader.Next(&line) && StartsWith(line, "From ");
  if (mbox && (!IsMboxSeparator(line) || !reader.Next(&line))) return false;
  uint64_t seen = 0;  // a bit per kMailHeaders entry, so repeats count once
  bool in_block = false;
  do {
    if (line.empty()) break;                   // end of the header block
    if (in_block && IsWsp(line[0])) continue;  // folded continuation
    size_t colon = 0;
    if (!IsHeaderLine(line, &colon)) break;
    in_block = true;
    // Mail software capitalizes header names while YAML and config keys are
    // lowercase by convention, which keeps "from: x" / "to: y" files out.
    if (line[0] < 'A' || line[0] > 'Z') continue;
    const auto* it = std::find(std::begin(kMailHeaders), std::end(kMailHeaders),
                               Lowercase(Trim(line.substr(0, colon))));
    if (it != std::end(kMailHeaders)) seen |= uint64_t{1} << (it - std::begin(kMailHeaders));
  } while (reader.Next(&line));
  const bool mail_only = (seen >> kGenericMailHeaders) != 0;
  const bool mime = (seen & 6) == 6;  // kMailHeaders[1] and [2]
  return mbox ? seen != 0 : std::popcount(seen) >= 2 && (mail_only || mime);
}

MailParseResult ParseMail(std::string_view data, const MailLimits& limits) {
  MailParseResult result;
  try {
    Walker walker(limits, &result);
    if (!IsMboxSeparator(data.substr(0, data.find('\n')))) {
      if (!data.empty()) walker.ParseMessage(data, "");
      return result;
    }
    std::string_view rest = data;
    for (uint64_t k = 1; !rest.empty() && !walker.stopped(); ++k) {
      const std::string_view message = NextMboxMessage(&rest);
      const bool numbered = k > 1 || !rest.empty();
      walker.ParseMessage(message, numbered ? "msg-" + std::to_string(k) + "/" : "");
    }
  } catch (const std::exception&) {
    // Only allocation can fail in here; keep what was decoded. The literal
    // fits the small-string buffer, so this assignment cannot throw.
    if (result.incomplete.empty()) result.incomplete = "total-size";
  }
  return result;
}

}  // namespace mamori::scanner::internal
