#include "mamori/scanner/allow_list.h"

#include <fnmatch.h>

#include "mamori/common/file_util.h"

namespace mamori::scanner {

Status AllowList::LoadText(std::string_view text, std::string_view source) {
  std::vector<std::string> digests, globs;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty()) continue;
    auto where = [&] { return std::string(source) + ":" + std::to_string(line_no) + ": "; };
    if (line.rfind("sha256:", 0) == 0) {
      std::string raw;
      std::string_view hex = line.substr(7);
      if (hex.size() != 64 || !HexDecode(hex, &raw)) {
        return InvalidArgumentError(where() + "sha256: needs 64 hex digits");
      }
      digests.push_back(std::move(raw));
    } else if (line.rfind("path:", 0) == 0) {
      std::string_view glob = line.substr(5);
      if (glob.empty() || glob.front() != '/') return InvalidArgumentError(where() + "path: needs an absolute glob");
      globs.emplace_back(glob);
    } else {
      return InvalidArgumentError(where() + "expected 'sha256:<hex>' or 'path:<glob>'");
    }
  }
  for (auto& d : digests) sha256_.insert(std::move(d));
  for (auto& g : globs) globs_.push_back(std::move(g));
  return Status::Ok();
}

void AllowList::AddSha256(std::string_view raw_digest) { sha256_.emplace(raw_digest); }
void AllowList::AddPathGlob(std::string glob) { globs_.push_back(std::move(glob)); }

bool AllowList::AllowsSha256(std::string_view raw_digest) const {
  return !sha256_.empty() && sha256_.count(std::string(raw_digest)) != 0;
}

bool AllowList::AllowsPath(const std::string& path) const {
  for (const auto& g : globs_) {
    if (::fnmatch(g.c_str(), path.c_str(), 0) == 0) return true;
  }
  return false;
}

}  // namespace mamori::scanner
