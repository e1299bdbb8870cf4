#include "command_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mamori/common/file_util.h"

namespace mamori::agent {
namespace {

std::string Line(const std::string& id, const CommandJournal::Entry& e) {
  if (!e.done) return "A " + id + " " + std::to_string(e.accepted_at_ns) + "\n";
  return "D " + id + " " + std::to_string(e.accepted_at_ns) + " " + (e.result.empty() ? "-" : HexEncode(e.result)) + "\n";
}

// One record; false for a torn or foreign line.
bool ParseLine(std::string_view line, std::string* id, CommandJournal::Entry* e) {
  auto next = [&line]() {
    size_t sp = line.find(' ');
    std::string_view word = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    return word;
  };
  std::string_view kind = next();
  *id = std::string(next());
  std::string_view at = next();
  if ((kind != "A" && kind != "D") || !CommandJournal::ValidId(*id) || at.empty()) return false;
  e->accepted_at_ns = 0;
  for (char c : at) {
    if (c < '0' || c > '9') return false;
    e->accepted_at_ns = e->accepted_at_ns * 10 + (c - '0');
  }
  e->done = kind == "D";
  e->result.clear();
  if (e->done) {
    std::string_view hex = next();
    if (hex.empty()) return false;
    if (hex != "-" && !HexDecode(hex, &e->result)) return false;
  }
  return true;
}

}  // namespace

CommandJournal::CommandJournal(std::string path, Options options) : path_(std::move(path)), options_(options) {}

CommandJournal::~CommandJournal() {
  if (fd_ >= 0) ::close(fd_);
}

bool CommandJournal::ValidId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                    c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<std::unique_ptr<CommandJournal>> CommandJournal::Open(const std::string& path, Options options, int64_t now_ns) {
  std::unique_ptr<CommandJournal> j(new CommandJournal(path, options));
  auto text = ReadFileToString(path);
  if (!text.ok() && text.status().code() != StatusCode::kNotFound) return text.status();
  if (text.ok()) {
    size_t start = 0;
    while (start < text->size()) {
      size_t nl = text->find('\n', start);
      if (nl == std::string::npos) break;  // torn last line: never acted upon (not durable when cut)
      std::string id;
      Entry e;
      if (ParseLine(std::string_view(*text).substr(start, nl - start), &id, &e)) j->entries_[id] = std::move(e);
      start = nl + 1;
    }
  }
  std::lock_guard<std::mutex> lock(j->mu_);
  MAMORI_RETURN_IF_ERROR(j->RewriteLocked(now_ns).WithContext(path));
  return j;
}

Status CommandJournal::RewriteLocked(int64_t now_ns) {
  const int64_t oldest = now_ns - static_cast<int64_t>(options_.retention.count()) * 1'000'000'000;
  std::string data;
  for (auto it = entries_.begin(); it != entries_.end();) {
    // Unfinished entries stay until reported, whatever their age.
    if (it->second.done && it->second.accepted_at_ns < oldest) {
      it = entries_.erase(it);
      continue;
    }
    data += Line(it->first, it->second);
    ++it;
  }
  MAMORI_RETURN_IF_ERROR(WriteFileAtomically(path_, data, 0600));
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) return Status(StatusCode::kInternal, path_ + ": open: " + std::strerror(errno));
  bytes_ = data.size();
  return Status::Ok();
}

Status CommandJournal::AppendLocked(const std::string& line, int64_t now_ns) {
  if (bytes_ + line.size() > options_.max_bytes) MAMORI_RETURN_IF_ERROR(RewriteLocked(now_ns));
  ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    Status s(StatusCode::kUnavailable, path_ + ": write: " + (n < 0 ? std::strerror(errno) : "short write"));
    // A partial line would corrupt the next record: start a clean file.
    (void)RewriteLocked(now_ns);
    return s;
  }
  bytes_ += line.size();
  if (::fdatasync(fd_) != 0) return Status(StatusCode::kUnavailable, path_ + ": fdatasync: " + std::strerror(errno));
  return Status::Ok();
}

std::optional<CommandJournal::Entry> CommandJournal::Find(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

Status CommandJournal::Accept(const std::string& id, int64_t now_ns) {
  if (!ValidId(id)) return Status(StatusCode::kInvalidArgument, "command id '" + id + "' is not [A-Za-z0-9_.-]{1,128}");
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.count(id) != 0) return Status(StatusCode::kAlreadyExists, "command " + id + " already accepted");
  Entry e;
  e.accepted_at_ns = now_ns;
  MAMORI_RETURN_IF_ERROR(AppendLocked(Line(id, e), now_ns));
  entries_[id] = std::move(e);
  return Status::Ok();
}

Status CommandJournal::Finish(const std::string& id, const std::string& serialized_result, int64_t now_ns) {
  if (!ValidId(id)) return Status(StatusCode::kInvalidArgument, "command id '" + id + "' is not [A-Za-z0-9_.-]{1,128}");
  std::lock_guard<std::mutex> lock(mu_);
  Entry e;
  auto it = entries_.find(id);
  e.accepted_at_ns = it != entries_.end() ? it->second.accepted_at_ns : now_ns;
  e.done = true;
  if (serialized_result.size() <= options_.max_result_bytes) e.result = serialized_result;
  MAMORI_RETURN_IF_ERROR(AppendLocked(Line(id, e), now_ns));
  entries_[id] = std::move(e);
  return Status::Ok();
}

std::vector<std::string> CommandJournal::Unfinished() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, e] : entries_) {
    if (!e.done) out.push_back(id);
  }
  return out;
}

size_t CommandJournal::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace mamori::agent
