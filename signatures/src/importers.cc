#include "mamori/signatures/importers.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <unordered_set>

#include "mamori/common/file_util.h"

namespace mamori::signatures {
namespace {

bool IsHexDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    size_t p = s.find(sep);
    out.push_back(s.substr(0, p));
    if (p == std::string_view::npos) return out;
    s.remove_prefix(p + 1);
  }
}

// Calls fn(line_number, line) for each line (CR stripped).
template <typename Fn>
void ForEachLine(std::string_view text, Fn fn) {
  size_t n = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(++n, line);
  }
}

// One CSV record (RFC 4180 quoting, no embedded newlines).
std::vector<std::string> ParseCsv(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back().push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back().push_back(c);
    }
  }
  for (auto& f : fields) f = std::string(Trim(f));
  return fields;
}

enum class ClamKind { kHashDb, kAllow };

}  // namespace

Status ImportClamav(const std::vector<std::string>& files, ImportResult* out) {
  std::unordered_set<std::string> seen;  // "digest:size" already taken
  for (const std::string& file : files) {
    std::string ext = Lower(std::filesystem::path(file).extension().string());
    ClamKind kind;
    if (ext == ".hdb" || ext == ".hdu" || ext == ".hsb" || ext == ".hsu") {
      kind = ClamKind::kHashDb;
    } else if (ext == ".fp" || ext == ".sfp") {
      kind = ClamKind::kAllow;
    } else {
      return InvalidArgumentError(file + ": not a ClamAV hash database (.hdb, .hdu, .hsb, .hsu, .fp, .sfp)");
    }
    auto text = ReadFileToString(file);
    if (!text.ok()) return text.status();
    const bool md5_only = ext == ".hdb" || ext == ".hdu" || ext == ".fp";
    ForEachLine(*text, [&](size_t n, std::string_view raw) {
      std::string_view line = Trim(raw);
      if (line.empty() || line.front() == '#') return;
      auto skip = [&](std::string reason) { out->skipped.push_back({file + ":" + std::to_string(n), std::move(reason)}); };
      auto f = Split(line, ':');
      if (f.size() < 3 || f.size() > 4) return skip("expected HASH:SIZE:NAME[:FLEVEL], got " + std::to_string(f.size()) + " fields");
      std::string digest = Lower(f[0]);
      if (!IsHexDigits(digest)) return skip("hash is not hexadecimal");
      if (md5_only ? digest.size() != 32 : (digest.size() != 40 && digest.size() != 64)) {
        return skip(md5_only ? "hash must be 32 hex digits (MD5) in " + ext
                             : "hash must be 40 (SHA-1) or 64 (SHA-256) hex digits in " + ext);
      }
      std::string_view size = f[1];
      if (size != "*" && (size.empty() || !std::all_of(size.begin(), size.end(), ::isdigit) || size.size() > 19)) {
        return skip("size must be a number or '*'");
      }
      std::string_view name = Trim(f[2]);
      if (name.empty()) return skip("empty signature name");
      if (f.size() == 4 && (f[3].empty() || !std::all_of(f[3].begin(), f[3].end(), ::isdigit))) {
        return skip("functionality level must be a number");
      }
      if (kind == ClamKind::kAllow) {
        if (digest.size() != 64) return skip("allow-list entries must be SHA-256; " + ext + " entry uses " +
                                             (digest.size() == 32 ? "MD5" : "SHA-1"));
        if (!seen.insert("allow:" + digest).second) return skip("duplicate allow-list entry");
        out->allow += "sha256:" + digest + "  # " + std::string(name) + "\n";
        ++out->taken_allow;
        return;
      }
      std::string key = digest + ":" + std::string(size);
      if (!seen.insert(key).second) return skip("duplicate of an earlier signature");
      out->hashes += key + ":" + std::string(name) + "\n";
      ++out->taken_hashes;
    });
  }
  return Status::Ok();
}

Status ImportSha256List(const std::string& file, const std::string& name, const std::string& column,
                        ImportResult* out) {
  auto text = ReadFileToString(file);
  if (!text.ok()) return text.status();
  if (name.empty() || name.find(':') != std::string::npos || name.find('\n') != std::string::npos) {
    return InvalidArgumentError("detection name must be non-empty and hold no ':' or newline");
  }
  // CSV when a header row (possibly inside a '#' comment) names a sha256 column.
  int csv_column = -1;
  size_t header_line = 0;
  auto find_column = [&](const std::vector<std::string>& fields) -> int {
    for (size_t i = 0; i < fields.size(); ++i) {
      std::string f = Lower(fields[i]);
      if (column.empty() ? f.find("sha256") != std::string::npos : f == Lower(column)) return static_cast<int>(i);
    }
    return -1;
  };
  ForEachLine(*text, [&](size_t n, std::string_view raw) {
    if (csv_column >= 0) return;
    std::string_view line = Trim(raw);
    if (line.empty()) return;
    if (line.front() == '#') {
      size_t text_start = line.find_first_not_of('#');
      if (text_start == std::string_view::npos) return;
      line = Trim(line.substr(text_start));
    }
    if (line.find(',') == std::string_view::npos) return;
    int c = find_column(ParseCsv(line));
    if (c >= 0) {
      csv_column = c;
      header_line = n;
    }
  });
  if (!column.empty() && csv_column < 0) {
    return InvalidArgumentError(file + ": no CSV header names a column '" + column + "'");
  }
  std::unordered_set<std::string> seen;
  ForEachLine(*text, [&](size_t n, std::string_view raw) {
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || n == header_line) return;
    auto skip = [&](std::string reason) { out->skipped.push_back({file + ":" + std::to_string(n), std::move(reason)}); };
    std::string digest;
    if (csv_column >= 0) {
      auto fields = ParseCsv(line);
      if (static_cast<size_t>(csv_column) >= fields.size()) return skip("row has no column " + std::to_string(csv_column + 1));
      digest = Lower(fields[static_cast<size_t>(csv_column)]);
    } else {
      digest = Lower(line.substr(0, line.find_first_of(" \t,;")));
    }
    if (digest.size() != 64 || !IsHexDigits(digest)) return skip("not a SHA-256 digest (64 hex digits)");
    if (!seen.insert(digest).second) return skip("duplicate digest");
    out->hashes += digest + ":*:" + name + "\n";
    ++out->taken_hashes;
  });
  return Status::Ok();
}

}  // namespace mamori::signatures
