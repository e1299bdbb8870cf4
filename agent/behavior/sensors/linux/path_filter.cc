#include "path_filter.h"

namespace mamori::behavior::linux_sensors {

std::string NormalizePath(std::string_view path) {
  if (path.empty() || path[0] != '/') return std::string(path);
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    i = j;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  if (parts.empty()) return "/";
  std::string out;
  out.reserve(path.size());
  for (std::string_view p : parts) {
    out += '/';
    out += p;
  }
  return out;
}

Result<PrefixFilter> PrefixFilter::Create(const std::vector<std::string>& prefixes, size_t max_count,
                                          size_t max_length) {
  if (prefixes.size() > max_count) {
    return InvalidArgumentError("at most " + std::to_string(max_count) + " watched path prefixes, got " +
                                std::to_string(prefixes.size()));
  }
  PrefixFilter f;
  for (const std::string& p : prefixes) {
    if (p.empty() || p[0] != '/') return InvalidArgumentError("watched path prefix is not absolute: '" + p + "'");
    std::string n = NormalizePath(p);
    if (n.size() > max_length) {
      return InvalidArgumentError("watched path prefix longer than " + std::to_string(max_length) + " bytes: " + p);
    }
    f.prefixes_.push_back(std::move(n));
  }
  return f;
}

bool PrefixFilter::Matches(std::string_view path) const {
  if (prefixes_.empty()) return true;
  for (const std::string& p : prefixes_) {
    if (p == "/") return true;
    if (path.size() < p.size() || path.compare(0, p.size(), p) != 0) continue;
    if (path.size() == p.size() || path[p.size()] == '/') return true;
  }
  return false;
}

}  // namespace mamori::behavior::linux_sensors
