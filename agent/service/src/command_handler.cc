#include "command_handler.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "mamori/common/file_util.h"
#include "mamori/common/log.h"
#include "mamori/scanner/hasher.h"

namespace mamori::agent {
namespace {

using v1::CommandResult;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

CommandResult Outcome(const v1::Command& c, CommandResult::Outcome o, StatusCode code = StatusCode::kOk,
                      std::string error = "") {
  CommandResult r;
  r.set_command_id(c.command_id());
  r.set_outcome(o);
  if (code != StatusCode::kOk) r.set_error_code(static_cast<int32_t>(code));
  r.set_error(std::move(error));
  return r;
}

CommandResult Rejected(const v1::Command& c, StatusCode code, std::string why) {
  return Outcome(c, CommandResult::OUTCOME_REJECTED, code, std::move(why));
}

CommandResult Failed(const v1::Command& c, const Status& s, const std::string& context = "") {
  return Outcome(c, CommandResult::OUTCOME_FAILED, s.code(), context.empty() ? s.message() : context + ": " + s.message());
}

bool IsHex(const std::string& s, size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)); });
}

bool AbsolutePath(const std::string& p) { return !p.empty() && p.front() == '/' && p.find('\0') == std::string::npos; }

void ToEntry(const quarantine::Record& r, v1::QuarantineEntry* e) {
  e->set_quarantine_id(r.id);
  e->set_state(r.state);
  e->set_original_path(r.original_path);
  e->set_size(r.size);
  e->set_sha256(r.sha256);
  e->set_detection(r.detection);
  e->set_signature_version(r.signature_version);
  e->set_quarantined_at_ns(r.quarantined_at * 1'000'000'000);
  e->set_restore_target(r.restore_target);
}

// Why the command cannot run at all, or nullopt. Checked before it is accepted.
std::optional<CommandResult> Refusal(const v1::Command& c, int64_t now_ns) {
  if (c.expires_at_ns() != 0 && now_ns >= c.expires_at_ns()) {
    return Rejected(c, StatusCode::kDeadlineExceeded, "command expired before the agent received it");
  }
  switch (c.kind_case()) {
    case v1::Command::KIND_NOT_SET:
      return Rejected(c, StatusCode::kUnimplemented, "unknown command kind (the server is newer than this agent)");
    case v1::Command::kIsolate:
      return Rejected(c, StatusCode::kUnimplemented, "network isolation is not implemented by this agent");
    case v1::Command::kScan:
      if (c.scan().paths().empty()) return Rejected(c, StatusCode::kInvalidArgument, "scan: no paths");
      for (const auto& p : c.scan().paths()) {
        if (!AbsolutePath(p)) return Rejected(c, StatusCode::kInvalidArgument, "scan: path '" + p + "' is not absolute");
      }
      return std::nullopt;
    case v1::Command::kQuarantineRestore:
      if (!IsHex(c.quarantine_restore().quarantine_id(), 32)) {
        return Rejected(c, StatusCode::kInvalidArgument,
                        "quarantine_restore: quarantine_id '" + c.quarantine_restore().quarantine_id() + "' is not 32 hex digits");
      }
      if (!c.quarantine_restore().to().empty() && !AbsolutePath(c.quarantine_restore().to())) {
        return Rejected(c, StatusCode::kInvalidArgument, "quarantine_restore: to '" + c.quarantine_restore().to() + "' is not absolute");
      }
      return std::nullopt;
    case v1::Command::kQuarantineDelete:
      if (!IsHex(c.quarantine_delete().quarantine_id(), 32)) {
        return Rejected(c, StatusCode::kInvalidArgument,
                        "quarantine_delete: quarantine_id '" + c.quarantine_delete().quarantine_id() + "' is not 32 hex digits");
      }
      return std::nullopt;
    case v1::Command::kSignaturePush: {
      const auto& p = c.signature_push();
      if (p.source_case() == v1::SignaturePush::kUrl) {
        return Rejected(c, StatusCode::kUnimplemented, "signature_push: fetching a bundle by url is not implemented; send the bundle");
      }
      if (p.source_case() != v1::SignaturePush::kBundle || p.bundle().empty()) {
        return Rejected(c, StatusCode::kInvalidArgument, "signature_push: no bundle");
      }
      if (!p.sha256().empty() && !IsHex(p.sha256(), 64)) {
        return Rejected(c, StatusCode::kInvalidArgument, "signature_push: sha256 '" + p.sha256() + "' is not 64 hex digits");
      }
      return std::nullopt;
    }
    case v1::Command::kKillProcess:
      if (c.kill_process().pid() <= 0) {
        return Rejected(c, StatusCode::kInvalidArgument, "kill_process: pid " + std::to_string(c.kill_process().pid()) + " is not a process");
      }
      if (c.kill_process().signal() != 0 && c.kill_process().signal() != SIGKILL) {
        return Rejected(c, StatusCode::kInvalidArgument,
                        "kill_process: signal " + std::to_string(c.kill_process().signal()) + " not supported (only SIGKILL, 0 or 9)");
      }
      return std::nullopt;
    case v1::Command::kQuarantineList:
    case v1::Command::kGetStatus:
      return std::nullopt;
  }
  return Rejected(c, StatusCode::kUnimplemented, "unknown command kind");
}

}  // namespace

std::string CommandKindName(const v1::Command& c) {
  switch (c.kind_case()) {
    case v1::Command::kScan: return "scan";
    case v1::Command::kQuarantineList: return "quarantine_list";
    case v1::Command::kQuarantineRestore: return "quarantine_restore";
    case v1::Command::kQuarantineDelete: return "quarantine_delete";
    case v1::Command::kSignaturePush: return "signature_push";
    case v1::Command::kKillProcess: return "kill_process";
    case v1::Command::kIsolate: return "isolate";
    case v1::Command::kGetStatus: return "get_status";
    case v1::Command::KIND_NOT_SET: break;
  }
  return "";
}

CommandHandler::CommandHandler(CommandHandlerOptions options, CommandOps ops, EventLog* events, ReportFn report)
    : options_(std::move(options)), ops_(std::move(ops)), events_(events), report_(std::move(report)) {}

CommandHandler::~CommandHandler() { Stop(); }

Result<std::unique_ptr<CommandHandler>> CommandHandler::Create(CommandHandlerOptions options, CommandOps ops,
                                                               EventLog* events, ReportFn report) {
  MAMORI_RETURN_IF_ERROR(MakeDirs(options.data_dir, 0700));
  std::unique_ptr<CommandHandler> h(new CommandHandler(options, std::move(ops), events, std::move(report)));
  auto j = CommandJournal::Open(options.data_dir + "/commands.journal", options.journal, NowNs());
  if (!j.ok()) return j.status().WithContext("command journal");
  h->journal_ = std::move(*j);
  return h;
}

Status CommandHandler::Start() {
  for (const auto& id : journal_->Unfinished()) {
    v1::Command c;
    c.set_command_id(id);
    Finish(c, Outcome(c, CommandResult::OUTCOME_FAILED, StatusCode::kAborted,
                      "interrupted by an agent restart; not run again (at most once)"));
  }
  started_ = true;
  long_.thread = std::thread([this] { Work(&long_); });
  quick_.thread = std::thread([this] { Work(&quick_); });
  return Status::Ok();
}

void CommandHandler::Stop() {
  if (!started_ || stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(scan_mu_);
    if (scan_progress_ != nullptr) scan_progress_->cancel = true;
  }
  for (Lane* lane : {&long_, &quick_}) {
    { std::lock_guard<std::mutex> lock(lane->mu); }
    lane->cv.notify_all();
    if (lane->thread.joinable()) lane->thread.join();
    std::deque<v1::Command> rest;
    {
      std::lock_guard<std::mutex> lock(lane->mu);
      rest.swap(lane->queue);
    }
    for (const auto& c : rest) {
      Finish(c, Outcome(c, CommandResult::OUTCOME_FAILED, StatusCode::kAborted, "the agent stopped before running it"));
    }
  }
}

bool CommandHandler::OnCommand(const v1::Command& c) {
  if (!started_ || stopping_) return false;  // not acknowledged: the server sends it again later
  const std::string& id = c.command_id();
  if (!CommandJournal::ValidId(id)) {
    MAMORI_LOG(kWarning, "command with an invalid id '" << id << "' ignored");
    return false;
  }
  if (auto prior = journal_->Find(id)) {
    // Delivered again (a lost CommandAck, another replica): never run twice.
    if (prior->done && !prior->result.empty()) {
      CommandResult r;
      if (r.ParseFromString(prior->result)) (void)report_(r);
    }
    MAMORI_LOG(kInfo, "command " << id << " delivered again; " << (prior->done ? "finished already" : "still running"));
    return true;
  }
  const int64_t now = NowNs();
  if (auto refusal = Refusal(c, now)) {
    events_->Append(Event("command_received").Str("command_id", id).Str("kind", CommandKindName(c))
                        .Str("requested_by", c.requested_by()));
    Finish(c, std::move(*refusal));
    return true;
  }
  if (Status s = journal_->Accept(id, now); !s.ok()) {
    MAMORI_LOG(kWarning, "command " << id << " not accepted: " << s.message());
    return false;
  }
  events_->Append(Event("command_received").Str("command_id", id).Str("kind", CommandKindName(c))
                      .Str("requested_by", c.requested_by()));
  Lane* lane = c.has_scan() || c.has_signature_push() ? &long_ : &quick_;
  {
    std::lock_guard<std::mutex> lock(lane->mu);
    lane->queue.push_back(c);
  }
  lane->cv.notify_one();
  return true;
}

void CommandHandler::Work(Lane* lane) {
  for (;;) {
    v1::Command c;
    {
      std::unique_lock<std::mutex> lock(lane->mu);
      lane->cv.wait(lock, [&] { return stopping_ || !lane->queue.empty(); });
      if (stopping_) return;  // the rest is reported by Stop
      c = std::move(lane->queue.front());
      lane->queue.pop_front();
    }
    Finish(c, Execute(c));
  }
}

void CommandHandler::Running(const v1::Command& c, const v1::ScanSummary* progress) {
  CommandResult r = Outcome(c, CommandResult::OUTCOME_RUNNING);
  if (progress != nullptr) *r.mutable_scan() = *progress;
  if (Status s = report_(r); !s.ok()) MAMORI_LOG(kWarning, "command " << c.command_id() << ": progress: " << s.message());
}

void CommandHandler::Finish(const v1::Command& c, CommandResult r) {
  Status reported = report_(r);
  if (!reported.ok()) MAMORI_LOG(kError, "command " << c.command_id() << ": reporting the result: " << reported.message());
  const std::string serialized = r.SerializeAsString();
  if (Status s = journal_->Finish(c.command_id(), serialized, NowNs()); !s.ok()) {
    MAMORI_LOG(kError, "command " << c.command_id() << ": journal: " << s.message());
  }
  static constexpr const char* kNames[] = {"unspecified", "succeeded", "failed", "rejected", "running"};
  const int o = static_cast<int>(r.outcome());
  events_->Append(Event("command_result").Str("command_id", c.command_id())
                      .Str("outcome", o >= 0 && o <= 4 ? kNames[o] : "unknown")
                      .Num("error_code", r.error_code()).Str("error", r.error()));
  ++finished_;
}

CommandResult CommandHandler::Execute(const v1::Command& c) {
  switch (c.kind_case()) {
    case v1::Command::kScan:
      return Scan(c);
    case v1::Command::kQuarantineList: {
      Running(c, nullptr);
      auto items = ops_.quarantine_list();
      if (!items.ok()) return Failed(c, items.status(), "quarantine list");
      CommandResult r = Outcome(c, CommandResult::OUTCOME_SUCCEEDED);
      for (const auto& rec : *items) ToEntry(rec, r.mutable_quarantine_list()->add_entries());
      return r;
    }
    case v1::Command::kQuarantineRestore:
      return Restore(c);
    case v1::Command::kQuarantineDelete:
      return Delete(c);
    case v1::Command::kSignaturePush:
      return Push(c);
    case v1::Command::kKillProcess:
      return Kill(c);
    case v1::Command::kGetStatus: {
      CommandResult r = Outcome(c, CommandResult::OUTCOME_SUCCEEDED);
      *r.mutable_status() = ops_.info();
      return r;
    }
    default:
      return Rejected(c, StatusCode::kUnimplemented, "unknown command kind");  // refused before queueing
  }
}

CommandResult CommandHandler::Scan(const v1::Command& c) {
  scanner::TreeScanProgress progress;
  {
    std::lock_guard<std::mutex> lock(scan_mu_);
    scan_progress_ = &progress;
    if (stopping_) progress.cancel = true;
  }
  auto snapshot = [&progress] {
    v1::ScanSummary s;
    s.set_files_scanned(progress.files.load());
    s.set_findings(progress.found.load());
    s.set_errors(progress.errors.load());
    return s;
  };
  v1::ScanSummary first = snapshot();
  Running(c, &first);
  std::mutex tick_mu;
  std::condition_variable tick_cv;
  bool done = false;
  std::thread ticker([&] {
    std::unique_lock<std::mutex> lock(tick_mu);
    while (!tick_cv.wait_for(lock, options_.progress_interval, [&] { return done; })) {
      v1::ScanSummary s = snapshot();
      Running(c, &s);
    }
  });
  std::vector<std::string> paths(c.scan().paths().begin(), c.scan().paths().end());
  auto summary = ops_.scan(paths, c.scan().apply_policy(), c.command_id(), &progress);
  {
    std::lock_guard<std::mutex> lock(tick_mu);
    done = true;
  }
  tick_cv.notify_all();
  ticker.join();
  {
    std::lock_guard<std::mutex> lock(scan_mu_);
    scan_progress_ = nullptr;
  }
  if (!summary.ok()) return Failed(c, summary.status(), "scan");
  if (progress.cancel) {
    CommandResult r = Outcome(c, CommandResult::OUTCOME_FAILED, StatusCode::kAborted, "scan cancelled: the agent is stopping");
    *r.mutable_scan() = *summary;
    return r;
  }
  CommandResult r = Outcome(c, CommandResult::OUTCOME_SUCCEEDED);
  *r.mutable_scan() = *summary;
  return r;
}

CommandResult CommandHandler::Restore(const v1::Command& c) {
  const auto& a = c.quarantine_restore();
  Running(c, nullptr);
  auto rec = ops_.quarantine_restore(a.quarantine_id(), a.to(), a.allow_list());
  events_->Append(Event("quarantine_restore").Str("id", a.quarantine_id()).Num("uid", 0)
                      .Str("result", rec.ok() ? "restored" : rec.status().message())
                      .Str("path", rec.ok() ? rec->restore_target : "").Num("allow", a.allow_list() ? 1 : 0)
                      .Str("requested_by", c.requested_by()).Str("command_id", c.command_id()));
  if (!rec.ok()) return Failed(c, rec.status(), "restore " + a.quarantine_id());
  CommandResult r = Outcome(c, CommandResult::OUTCOME_SUCCEEDED);
  ToEntry(*rec, r.mutable_quarantine_entry());
  return r;
}

CommandResult CommandHandler::Delete(const v1::Command& c) {
  const std::string& id = c.quarantine_delete().quarantine_id();
  Running(c, nullptr);
  std::optional<quarantine::Record> found;
  if (auto items = ops_.quarantine_list(); items.ok()) {
    for (const auto& rec : *items) {
      if (rec.id == id) found = rec;
    }
  }
  Status s = ops_.quarantine_delete(id);
  events_->Append(Event("quarantine_delete").Str("id", id).Num("uid", 0).Str("result", s.ok() ? "ok" : s.message())
                      .Str("requested_by", c.requested_by()).Str("command_id", c.command_id()));
  if (!s.ok()) return Failed(c, s, "delete " + id);
  CommandResult r = Outcome(c, CommandResult::OUTCOME_SUCCEEDED);
  if (found) ToEntry(*found, r.mutable_quarantine_entry());
  else r.mutable_quarantine_entry()->set_quarantine_id(id);
  return r;
}

CommandResult CommandHandler::Push(const v1::Command& c) {
  const auto& p = c.signature_push();
  Running(c, nullptr);
  auto reason = [&]() -> Status {
    if (!p.sha256().empty()) {
      std::string got = scanner::Hasher::Of(p.bundle()).hex(scanner::DigestKind::kSha256);
      std::string want = p.sha256();
      std::transform(want.begin(), want.end(), want.begin(), [](unsigned char ch) { return std::tolower(ch); });
      if (got != want) {
        return Status(StatusCode::kDataLoss, "bundle sha256 " + got + " does not match the command's " + want);
      }
    }
    const std::string dir = options_.data_dir + "/bundles";
    MAMORI_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    const std::string path = dir + "/" + c.command_id() + ".mbundle";
    MAMORI_RETURN_IF_ERROR(WriteFileAtomically(path, p.bundle(), 0600));
    Status s = ops_.install_bundle(path);
    ::unlink(path.c_str());  // loaded in memory (or refused): the copy is not needed
    const std::string prefix = path + ": ";  // a temporary name says nothing to the console
    if (!s.ok() && s.message().rfind(prefix, 0) == 0) return Status(s.code(), s.message().substr(prefix.size()));
    return s;
  }();
  events_->Append(Event("signature_update").Str("bundle", "pushed by command " + c.command_id())
                      .Str("result", reason.ok() ? "installed" : reason.message())
                      .Str("requested_by", c.requested_by()).Str("command_id", c.command_id()));
  if (!reason.ok()) return Failed(c, reason, "bundle refused");
  CommandResult r = Outcome(c, CommandResult::OUTCOME_SUCCEEDED);
  *r.mutable_status() = ops_.info();
  return r;
}

CommandResult CommandHandler::Kill(const v1::Command& c) {
  const auto& k = c.kill_process();
  Status s = ops_.kill(k.pid(), k.start_time_ns(), k.tree());
  events_->Append(Event("command_kill").Num("pid", k.pid()).Num("start_time_ns", static_cast<int64_t>(k.start_time_ns()))
                      .Num("tree", k.tree() ? 1 : 0)
                      .Str("result", s.ok() ? "killed" : s.message())
                      .Str("requested_by", c.requested_by()).Str("command_id", c.command_id()));
  if (s.code() == StatusCode::kPermissionDenied) return Rejected(c, s.code(), "kill_process: " + s.message());
  if (!s.ok()) return Failed(c, s, "kill_process");
  return Outcome(c, CommandResult::OUTCOME_SUCCEEDED);
}

}  // namespace mamori::agent
