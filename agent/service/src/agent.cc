#include "agent.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "cron.h"
#include "mamori/common/file_util.h"
#include "mamori/common/json.h"
#include "mamori/common/log.h"
#include "mamori/scanner/tree_scan.h"
#include "mamori/signatures/bundle.h"
#include "mamori/telemetry/convert.h"

namespace mamori::agent {
namespace {

// Lowest CPU and I/O priority for scheduled scans: they use only idle time.
void BecomeIdle() {
  sched_param p{};
  ::sched_setscheduler(0, SCHED_IDLE, &p);
  constexpr int kIoprioClassIdle = 3, kIoprioWhoProcess = 1, kIoprioClassShift = 13;
  ::syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, kIoprioClassIdle << kIoprioClassShift);
}

// On-demand scans yield to on-access work, which a waiting process blocks on.
void BecomeBackground() { ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10); }

std::string ExeOf(pid_t pid) {
  char buf[4096];
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string FirstSignature(const scanner::ScanReport& r) {
  return r.findings.empty() ? std::string() : r.findings.front().signature;
}

}  // namespace

Result<std::shared_ptr<const scanner::SignatureSet>> LoadConfiguredSignatures(const AgentConfig& config,
                                                                              uint64_t min_exclusive_version) {
  return signatures::LoadSignatureSources(config.signatures, config.trusted_keys, min_exclusive_version);
}

namespace {

// The last bundle a server command installed (docs/agent-commands.md).
std::string PushedBundlePath(const AgentConfig& c) { return c.data_dir + "/signatures/pushed.mbundle"; }

// `configured`, or the pushed bundle when it verifies and is newer.
std::shared_ptr<const scanner::SignatureSet> WithPushedBundle(const AgentConfig& config,
                                                              std::shared_ptr<const scanner::SignatureSet> configured) {
  AgentConfig c = config;
  c.signatures = {PushedBundlePath(config)};
  if (::access(c.signatures[0].c_str(), F_OK) != 0) return configured;
  auto pushed = LoadConfiguredSignatures(c, configured->bundle_version);
  if (!pushed.ok()) {
    MAMORI_LOG(kWarning, "pushed signature bundle not used: " << pushed.status().message());
    return configured;
  }
  return *pushed;
}

}  // namespace

Agent::Agent(AgentConfig config) : config_(std::move(config)) {}

Agent::~Agent() { Stop(); }

Result<std::unique_ptr<Agent>> Agent::Create(AgentConfig config) {
  MAMORI_RETURN_IF_ERROR(MakeDirs(config.data_dir, 0700));
  std::unique_ptr<Agent> a(new Agent(config));
  if (auto allow = ReadFileToString(config.data_dir + "/restored.allow"); allow.ok()) {
    MAMORI_RETURN_IF_ERROR(a->restored_allow_.LoadText(*allow, config.data_dir + "/restored.allow"));
  }
  auto events = EventLog::Open(config.data_dir + "/events.jsonl");
  if (!events.ok()) return events.status();
  a->events_ = std::move(*events);
  auto sigs = LoadConfiguredSignatures(config, 0);
  if (!sigs.ok()) return sigs.status().WithContext("signatures");
  MAMORI_RETURN_IF_ERROR(a->signatures_.Install(WithPushedBundle(config, *sigs)));
  quarantine::VaultOptions vo;
  vo.quota_bytes = config.quarantine_quota;
  vo.retention_seconds = config.quarantine_retention_days * 24 * 3600;
  auto vault = quarantine::Vault::Open(config.data_dir + "/quarantine", vo);
  if (!vault.ok()) return vault.status();
  a->vault_ = std::move(*vault);
  telemetry::EventWriter* writer = nullptr;
  if (!config.telemetry_servers.empty()) {
    auto t = TelemetryService::Create(config);
    if (!t.ok()) return t.status();
    a->telemetry_ = std::move(*t);
    writer = a->telemetry_->writer();
    a->events_->SetForwarder([writer](const Event& e) {
      // Behavior alerts, events and drops reach the spool typed, from the behavior service.
      if (e.type() == "behavior_alert" || e.type() == "behavior_event" || e.type() == "sensor_drops") return;
      // Command results reach the spool typed, from the command handler.
      if (e.type() == "command_received" || e.type() == "command_result") return;
      (void)writer->WriteAgentEvent(e);
    });
  }
  if (a->telemetry_) {
    // Commands arrive only on the authenticated uplink: no telemetry, no commands.
    a->responder_ = std::make_unique<behavior::Responder>(behavior::Responder::Options{}, nullptr,
                                                          [](const std::string&, const std::string&) -> Result<std::string> {
                                                            return Status(StatusCode::kUnimplemented, "not used");
                                                          });
    TelemetryService* t = a->telemetry_.get();
    CommandHandlerOptions ho;
    ho.data_dir = config.data_dir;
    auto h = CommandHandler::Create(ho, a->MakeCommandOps(), a->events_.get(), [t](const v1::CommandResult& r) -> Status {
      telemetry::Converted c = telemetry::FromCommandResult(r, telemetry::NowNs());
      auto seq = t->writer()->Write(c.event, c.priority);
      if (!seq.ok()) return seq.status();
      if (*seq == telemetry::Spool::kDropped) return Status(StatusCode::kResourceExhausted, "spool full: result dropped");
      return t->Sync();
    });
    if (!h.ok()) return h.status();
    a->commands_ = std::move(*h);
  }
  if (config.behavior_enabled) {
    quarantine::Vault* v = a->vault_.get();
    auto behavior = BehaviorService::Create(config, a->events_.get(),
                                            [v](const std::string& path, const std::string& detection) -> Result<std::string> {
                                              auto rec = v->Quarantine(path, -1, detection, "behavior");
                                              if (!rec.ok()) return rec.status();
                                              return rec->id;
                                            },
                                            writer);
    if (!behavior.ok()) return behavior.status();
    a->behavior_ = std::move(*behavior);
  }
  return a;
}

Status Agent::Start() {
  AgentConfig c;
  {
    std::lock_guard<std::mutex> lock(config_mu_);
    c = config_;
  }
  if (c.parser_sandbox) {
    // Before anything scans. Protection does not depend on it: a kernel
    // without seccomp (or a non-x86-64 build) scans in process, loudly.
    scanner::ParserPoolOptions po;
    po.workers = static_cast<int>(c.parser_workers);
    auto pool = scanner::ParserPool::Start(po);
    auto scan_pool = pool.ok() ? scanner::ParserPool::Start(po) : pool;
    if (pool.ok() && scan_pool.ok()) {
      parser_pool_ = std::move(*pool);
      scan_parser_pool_ = std::move(*scan_pool);
    } else {
      parser_pool_error_ = (pool.ok() ? scan_pool : pool).status().message();
      MAMORI_LOG(kError, "parser sandbox unavailable, containers and mail are parsed in the agent process: "
                             << parser_pool_error_);
      events_->Append(Event("parser_sandbox_unavailable").Str("error", parser_pool_error_));
    }
  }
  running_ = true;
  action_thread_ = std::thread([this] { ActionLoop(); });
  scheduler_thread_ = std::thread([this] { SchedulerLoop(); });
  if (c.onaccess_enabled && (!c.exec_paths.empty() || !c.open_paths.empty())) {
    OnAccessOptions o;
    o.exec_paths = c.exec_paths;
    o.open_paths = c.open_paths;
    o.close_write = c.scan_on_close_write;
    o.deadline = c.deadline;
    o.workers = c.onaccess_workers;
    auto m = MakeOnAccessMonitor(
        o, [this](const AccessEvent& e) { return Decide(e); },
        [this](const std::string& what, const AccessEvent* e) { ReportMonitor(what, e); });
    if (!m.ok()) return m.status();
    monitor_ = std::move(*m);
    MAMORI_RETURN_IF_ERROR(monitor_->Start().WithContext("on-access"));
  }
  if (behavior_) MAMORI_RETURN_IF_ERROR(behavior_->Start());
  if (commands_) MAMORI_RETURN_IF_ERROR(commands_->Start());
  if (telemetry_) {
    CommandHandler* h = commands_.get();
    MAMORI_RETURN_IF_ERROR(telemetry_->Start([this] { return Info(); },
                                             [h](const v1::Command& c) { return h != nullptr && h->OnCommand(c); }));
  }
  std::vector<uid_t> uids(c.control_uids.begin(), c.control_uids.end());
  auto control = ControlServer::Start(c.control_socket, uids,
                                      [this](const ControlPeer& p, const std::vector<std::string>& r, ControlReply& reply) {
                                        return HandleControl(p, r, reply);
                                      });
  if (!control.ok()) return control.status();
  control_ = std::move(*control);
  auto sigs = signatures_.Current();
  events_->Append(Event("agent_started")
                      .Str("signature_version", sigs->version)
                      .Num("bundle_version", static_cast<int64_t>(sigs->bundle_version))
                      .Num("onaccess", monitor_ ? 1 : 0));
  return Status::Ok();
}

void Agent::Stop() {
  if (!running_.exchange(false)) return;
  // Permission events first: processes are waiting on them.
  if (monitor_) monitor_->Stop();
  if (behavior_) behavior_->Stop();
  if (control_) control_->Stop();
  if (commands_) commands_->Stop();  // before the action thread: a cancelled scan may still post quarantines
  {
    std::lock_guard<std::mutex> lock(action_mu_);
    stopping_ = true;
  }
  action_cv_.notify_all();
  if (action_thread_.joinable()) action_thread_.join();
  if (scheduler_thread_.joinable()) scheduler_thread_.join();
  events_->Append(Event("agent_stopped"));
  if (telemetry_) telemetry_->Stop();  // last: the events above are spooled first
}

v1::AgentInfo Agent::Info() const {
  v1::AgentInfo info;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) info.set_hostname(host);
  utsname u{};
  if (::uname(&u) == 0) {
    info.set_kernel(u.release);
    info.set_arch(u.machine);
  }
  if (auto os = ReadFileToString("/etc/os-release"); os.ok()) {
    std::string id, version;
    for (size_t i = 0; i < os->size();) {
      size_t nl = os->find('\n', i);
      std::string line = os->substr(i, nl == std::string::npos ? std::string::npos : nl - i);
      auto value = [&](const char* key) {
        std::string v = line.substr(std::strlen(key));
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        return v;
      };
      if (line.rfind("ID=", 0) == 0) id = value("ID=");
      if (line.rfind("VERSION_ID=", 0) == 0) version = value("VERSION_ID=");
      if (nl == std::string::npos) break;
      i = nl + 1;
    }
    info.set_os(version.empty() ? id : id + " " + version);
  }
  info.set_agent_version(MAMORI_AGENT_VERSION);
  auto sigs = signatures_.Current();
  info.set_signature_version(sigs->version);
  info.set_bundle_version(sigs->bundle_version);
  info.set_sensor_mode(behavior_ ? behavior_->sensor_name() : "none");
  info.set_onaccess_enabled(monitor_ != nullptr);
  return info;
}

Status Agent::Reload() {
  std::string source;
  {
    std::lock_guard<std::mutex> lock(config_mu_);
    source = config_.source;
  }
  auto fresh = LoadAgentConfig(source);
  if (!fresh.ok()) {
    events_->Append(Event("reload_refused").Str("reason", fresh.status().message()));
    return fresh.status();
  }
  auto sigs = LoadConfiguredSignatures(*fresh, 0);
  if (!sigs.ok()) {
    events_->Append(Event("reload_refused").Str("reason", sigs.status().message()));
    return sigs.status();
  }
  if (behavior_) {
    Status b = behavior_->ReloadRules(*fresh);
    if (!b.ok()) {
      events_->Append(Event("reload_refused").Str("reason", b.message()));
      return b;
    }
  }
  Status s = signatures_.Install(WithPushedBundle(*fresh, *sigs));
  if (!s.ok() && s.code() != StatusCode::kFailedPrecondition) return s;  // same bundle again is fine
  if (s.ok() && monitor_) monitor_->ClearCleanMarks();
  {
    std::lock_guard<std::mutex> lock(config_mu_);
    // On-access marks and the control socket stay as started: they need a restart to move.
    AgentConfig& c = config_;
    c.log_level = fresh->log_level;
    c.log_json = fresh->log_json;
    c.signatures = fresh->signatures;
    c.trusted_keys = fresh->trusted_keys;
    c.action = fresh->action;
    c.onaccess_max_file_size = fresh->onaccess_max_file_size;
    c.exclude_paths = fresh->exclude_paths;
    c.exclude_processes = fresh->exclude_processes;
    c.exclude_sha256 = fresh->exclude_sha256;
    c.scheduled_scans = fresh->scheduled_scans;
    c.limits = fresh->limits;
    c.scan_threads = fresh->scan_threads;
  }
  events_->Append(Event("reloaded").Str("signature_version", signatures_.Current()->version));
  return Status::Ok();
}

bool Agent::ExcludedProcess(pid_t pid) const {
  std::lock_guard<std::mutex> lock(config_mu_);
  if (config_.exclude_processes.empty()) return false;
  std::string exe = ExeOf(pid);
  return std::find(config_.exclude_processes.begin(), config_.exclude_processes.end(), exe) !=
         config_.exclude_processes.end();
}

bool Agent::ExcludedPath(const std::string& path) const {
  std::lock_guard<std::mutex> lock(config_mu_);
  for (const auto& g : config_.exclude_paths) {
    if (::fnmatch(g.c_str(), path.c_str(), 0) == 0) return true;
  }
  return false;
}

bool Agent::ExcludedHash(const std::string& sha256_hex) const {
  std::lock_guard<std::mutex> lock(config_mu_);
  std::string raw;
  if (HexDecode(sha256_hex, &raw) && restored_allow_.AllowsSha256(raw)) return true;
  return !sha256_hex.empty() &&
         std::find(config_.exclude_sha256.begin(), config_.exclude_sha256.end(), sha256_hex) !=
             config_.exclude_sha256.end();
}

std::shared_ptr<scanner::VerdictCache> Agent::CacheFor(const std::shared_ptr<const scanner::SignatureSet>& sigs) {
  std::lock_guard<std::mutex> lock(cache_mu_);
  // A new signature version starts a new cache: old verdicts no longer hold.
  if (!cache_ || cache_version_ != sigs->version) {
    cache_ = std::make_shared<scanner::VerdictCache>("", sigs->version, 1u << 20);
    cache_version_ = sigs->version;
  }
  return cache_;
}

std::unique_ptr<scanner::Scanner> Agent::AcquireScanner(const std::shared_ptr<const scanner::SignatureSet>& sigs) {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    while (!pool_.empty()) {
      auto s = std::move(pool_.back());
      pool_.pop_back();
      if (&s->signatures() == sigs.get()) return s;  // scanners of an older set are dropped
    }
  }
  std::lock_guard<std::mutex> lock(config_mu_);
  scanner::ScanOptions o;
  o.limits = config_.limits;
  // Always hash: exclusions and restored files are matched by SHA-256, and
  // events carry it.
  o.size_prefilter = false;
  o.parser_pool = parser_pool_;
  auto s = scanner::Scanner::Create(sigs, o);
  return s.ok() ? std::move(*s) : nullptr;
}

void Agent::ReleaseScanner(std::unique_ptr<scanner::Scanner> s) {
  if (!s) return;
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (pool_.size() < 16) pool_.push_back(std::move(s));
}

AccessVerdict Agent::Decide(const AccessEvent& e) {
  if (ExcludedProcess(e.pid) || ExcludedPath(e.path)) return AccessVerdict::kAllow;
  struct stat st {};
  if (::fstat(e.fd, &st) != 0 || !S_ISREG(st.st_mode)) return AccessVerdict::kAllow;
  OnAccessAction action;
  uint64_t max_size;
  {
    std::lock_guard<std::mutex> lock(config_mu_);
    action = config_.action;
    max_size = config_.onaccess_max_file_size;
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) return AccessVerdict::kAllow;  // too big to hold a process for
  auto sigs = signatures_.Current();
  auto cache = CacheFor(sigs);
  const scanner::FileKey key = scanner::FileKey::FromStat(st);
  scanner::ScanReport r;
  if (auto cached = cache->Lookup(key, e.path)) {
    r.path = e.path;
    r.findings = std::move(cached->findings);
    r.sha256 = std::move(cached->sha256);
    r.verdict = r.findings.empty() ? scanner::Verdict::kClean : scanner::Verdict::kFound;
    r.from_cache = true;
  } else {
    auto sc = AcquireScanner(sigs);
    if (!sc) return AccessVerdict::kAllow;
    r = sc->ScanFd(e.fd, st, e.path);
    ReleaseScanner(std::move(sc));
    cache->Record(key, r);
  }
  const bool found = r.verdict == scanner::Verdict::kFound && !ExcludedHash(r.sha256);
  MAMORI_LOG(kDebug, "onaccess pid " << e.pid << " " << e.path << ": " << scanner::VerdictName(r.verdict)
                                     << (r.from_cache ? " (cached)" : "") << (found ? "" : ", allowed") << " ino "
                                     << key.ino << " ctime " << key.ctime_ns);
  if (!found) {
    if (r.verdict == scanner::Verdict::kClean && e.permission() && monitor_) monitor_->MarkClean(e.fd);
    return AccessVerdict::kAllow;
  }
  const char* kind = e.kind == AccessEvent::Kind::kExec ? "exec" : e.kind == AccessEvent::Kind::kOpen ? "open" : "close_write";
  const bool deny = action != OnAccessAction::kReport && e.permission();
  events_->Append(Event("onaccess")
                      .Str("access", kind)
                      .Str("decision", deny ? "deny" : "allow")
                      .Str("path", e.path)
                      .Num("pid", e.pid)
                      .Str("exe", ExeOf(e.pid))
                      .Str("signature", FirstSignature(r))
                      .Str("object", r.findings.front().object)
                      .Str("sha256", r.sha256)
                      .Str("policy", std::string(OnAccessActionName(action))));
  if (action == OnAccessAction::kQuarantine) {
    int fd = ::dup(e.fd);  // the event's descriptor is closed once answered; the job owns this one
    if (fd >= 0) Act(r, fd, "onaccess", e.pid);
  }
  return deny ? AccessVerdict::kDeny : AccessVerdict::kAllow;
}

void Agent::Act(const scanner::ScanReport& r, int fd, const std::string& source, pid_t pid) {
  const std::string version = signatures_.Current()->version;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return;
  }
  const std::pair<uint64_t, uint64_t> inode{st.st_dev, st.st_ino};
  {
    // Several events for one file (open, exec, close-write) quarantine it once.
    std::lock_guard<std::mutex> lock(action_mu_);
    if (!quarantining_.insert(inode).second) {
      ::close(fd);
      return;
    }
  }
  PostAction([this, r, fd, source, pid, version, inode] {
    auto rec = vault_->Quarantine(r.path, fd, FirstSignature(r), version);
    ::close(fd);
    {
      std::lock_guard<std::mutex> lock(action_mu_);
      quarantining_.erase(inode);
    }
    Event ev("quarantine");
    ev.Str("source", source).Str("path", r.path).Str("signature", FirstSignature(r)).Num("pid", pid);
    if (rec.ok()) {
      ev.Str("result", "quarantined").Str("id", rec->id).Str("sha256", rec->sha256);
    } else {
      ev.Str("result", "failed").Str("reason", rec.status().message());
    }
    events_->Append(ev);
  });
}

void Agent::ReportMonitor(const std::string& what, const AccessEvent* e) {
  Event ev("onaccess_" + what);
  if (e != nullptr) ev.Str("path", e->path).Num("pid", e->pid).Str("decision", "allow");
  events_->Append(ev);
}

void Agent::PostAction(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(action_mu_);
    actions_.push_back(std::move(job));
  }
  action_cv_.notify_one();
}

void Agent::ActionLoop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(action_mu_);
      action_cv_.wait(lock, [&] { return stopping_ || !actions_.empty(); });
      if (actions_.empty()) return;  // stopping, and every posted action done
      job = std::move(actions_.front());
      actions_.pop_front();
    }
    job();
  }
}

void Agent::SchedulerLoop() {
  std::time_t last_minute = 0;
  while (running_) {
    std::time_t now = std::time(nullptr);
    std::time_t minute = now - now % 60;
    if (minute != last_minute) {
      last_minute = minute;
      std::vector<ScheduledScan> due;
      {
        std::lock_guard<std::mutex> lock(config_mu_);
        for (const auto& s : config_.scheduled_scans) {
          if (CronMatches(s.schedule, now)) due.push_back(s);
        }
      }
      for (const auto& s : due) {
        events_->Append(Event("scheduled_scan_started").Str("name", s.name));
        int code = RunScan(s.paths, false, "scheduled:" + s.name, /*idle=*/true, nullptr);
        events_->Append(Event("scheduled_scan_finished").Str("name", s.name).Num("exit", code));
      }
    }
    for (int i = 0; i < 10 && running_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int Agent::RunScan(const std::vector<std::string>& paths, bool json, const std::string& source, bool idle,
                   ControlReply* reply, const std::string& command_id, bool apply_policy,
                   scanner::TreeScanProgress* external_progress, std::atomic<uint64_t>* reported) {
  auto sigs = signatures_.Current();
  scanner::TreeScanOptions o;
  OnAccessAction action;
  {
    std::lock_guard<std::mutex> lock(config_mu_);
    o.scan.limits = config_.limits;
    o.threads = config_.scan_threads;
    action = apply_policy ? config_.action : OnAccessAction::kReport;
  }
  o.worker_init = idle ? BecomeIdle : BecomeBackground;
  o.scan.size_prefilter = false;
  o.scan.parser_pool = scan_parser_pool_;
  auto cache = CacheFor(sigs);
  o.cache = cache.get();
  scanner::TreeScanProgress own_progress;
  scanner::TreeScanProgress& progress = external_progress != nullptr ? *external_progress : own_progress;
  ++scans_running_;
  auto start = std::chrono::steady_clock::now();
  Status s = scanner::ScanTree(sigs, paths, o, [&](const scanner::ScanReport& r) {
    for (const auto& f : r.findings) {
      if (reply != nullptr) {
        reply->Out(json ? "{\"type\":\"finding\",\"path\":" + json::Quote(r.path) + ",\"object\":" + json::Quote(f.object) +
                              ",\"signature\":" + json::Quote(f.signature) + "}"
                        : f.object + ": " + f.signature + " FOUND");
      }
    }
    if (reply != nullptr && !json) {
      for (const auto& why : r.incomplete) reply->Out(r.path + ": INCOMPLETE: " + why);
      if (r.verdict == scanner::Verdict::kError) reply->Err(r.path + ": ERROR: " + r.error);
    }
    if (r.verdict == scanner::Verdict::kFound && !ExcludedHash(r.sha256)) {
      if (reported != nullptr) ++*reported;
      Event finding("scan_finding");
      finding.Str("source", source)
          .Str("path", r.path)
          .Str("object", r.findings.front().object)
          .Str("signature", FirstSignature(r))
          .Str("policy", std::string(OnAccessActionName(action)));
      if (!command_id.empty()) finding.Str("sha256", r.sha256).Str("signature_version", sigs->version).Str("command_id", command_id);
      events_->Append(finding);
      if (action == OnAccessAction::kQuarantine) {
        int fd = ::open(r.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) Act(r, fd, source, 0);
      }
    }
  }, &progress);
  --scans_running_;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!s.ok()) {
    if (reply != nullptr) reply->Err(s.message());
    return 2;
  }
  if (reply != nullptr) {
    char line[256];
    std::snprintf(line, sizeof line, "scanned %llu files (%llu from cache), %llu found, %llu incomplete, %llu errors in %.2f s",
                  static_cast<unsigned long long>(progress.files.load()),
                  static_cast<unsigned long long>(progress.cached.load()),
                  static_cast<unsigned long long>(progress.found.load()),
                  static_cast<unsigned long long>(progress.incomplete.load()),
                  static_cast<unsigned long long>(progress.errors.load()), secs);
    if (!json) reply->Out(line);
  }
  if (progress.found > 0) return 1;
  return progress.errors > 0 || progress.incomplete > 0 ? 2 : 0;
}

Status Agent::CheckHealth(std::chrono::milliseconds stale) const {
  if (!monitor_) return Status::Ok();
  const auto age = std::chrono::steady_clock::now() - monitor_->LastHeartbeat();
  if (age < stale) return Status::Ok();
  return UnavailableError("the on-access loops have not turned for " +
                          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()) +
                          " s (permission events may be going unanswered)");
}

std::string Agent::StatusText() const {
  auto sigs = signatures_.Current();
  std::string out;
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count();
  out += "agent        running, pid " + std::to_string(::getpid()) + ", up " + std::to_string(uptime) + " s\n";
  out += "signatures   version " + sigs->version.substr(0, 12) +
         (sigs->bundle_version ? " (bundle " + std::to_string(sigs->bundle_version) + ", signer " + sigs->publisher_key_id + ")" : "") +
         ", " + std::to_string(sigs->hashes.size()) + " hashes, " +
         std::to_string(sigs->yara ? sigs->yara->rule_count() : 0) + " YARA rules\n";
  if (monitor_) {
    const auto& s = monitor_->stats();
    out += "on-access    fanotify: " + std::to_string(s.permission_events.load()) + " permission events, " +
           std::to_string(s.denied.load()) + " denied, " + std::to_string(s.timeouts.load()) + " timeouts, " +
           std::to_string(s.overflows.load()) + " overflows, " + std::to_string(s.ignore_marks.load()) +
           " clean files marked\n";
  } else {
    out += "on-access    off\n";
  }
  out += (behavior_ ? behavior_->StatusLine() : std::string("behavior     off")) + "\n";
  out += (telemetry_ ? telemetry_->StatusLine() : std::string("telemetry    off (no telemetry.servers)")) + "\n";
  if (parser_pool_ && scan_parser_pool_) {
    auto a = parser_pool_->stats();
    auto b = scan_parser_pool_->stats();
    out += "parsers      sandboxed: " + std::to_string(parser_pool_->worker_pids().size()) + " on-access + " +
           std::to_string(scan_parser_pool_->worker_pids().size()) + " scan workers, " +
           std::to_string(a.requests + b.requests) + " requests, " + std::to_string(a.workers_lost + b.workers_lost) +
           " workers lost, " + std::to_string(a.unavailable + b.unavailable) + " unavailable\n";
  } else {
    out += "parsers      in process" +
           (parser_pool_error_.empty() ? std::string(" (scan.parser_sandbox: false)") : " (sandbox failed: " + parser_pool_error_ + ")") +
           "\n";
  }
  auto items = vault_->List();
  out += "quarantine   " + (items.ok() ? std::to_string(items->size()) + " items" : items.status().message()) + "\n";
  out += "events       " + std::to_string(events_->appended()) + " since start\n";
  out += "scans        " + std::to_string(scans_running_.load()) + " running";
  return out;
}

int Agent::HandleControl(const ControlPeer& peer, const std::vector<std::string>& req, ControlReply& reply) {
  if (req.empty() || req[0].empty()) {
    reply.Err("empty request");
    return 64;
  }
  const std::string& verb = req[0];
  std::vector<std::string> args(req.begin() + 1, req.end());
  auto has = [&](const std::string& flag) { return std::find(args.begin(), args.end(), flag) != args.end(); };
  if (verb == "status") {
    std::string text = StatusText();
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      reply.Out(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    return 0;
  }
  if (verb == "scan") {
    std::vector<std::string> paths;
    for (const auto& a : args) {
      if (a == "--json") continue;
      if (a.empty() || a.front() != '/') {
        reply.Err("scan paths must be absolute: " + a);
        return 64;
      }
      paths.push_back(a);
    }
    if (paths.empty()) {
      reply.Err("scan needs a path");
      return 64;
    }
    events_->Append(Event("scan_requested").Num("uid", peer.uid).Num("pid", peer.pid).Str("paths", paths.front()));
    return RunScan(paths, has("--json"), "control", false, &reply);
  }
  if (verb == "quarantine-list") {
    auto items = vault_->List();
    if (!items.ok()) {
      reply.Err(items.status().message());
      return 2;
    }
    for (const auto& r : *items) {
      char when[32];
      std::time_t t = r.quarantined_at;
      std::tm tm{};
      gmtime_r(&t, &tm);
      std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
      reply.Out(r.id + "  " + when + "  " + std::to_string(r.size) + "  " + r.detection + "  " + r.original_path);
    }
    return 0;
  }
  if (verb == "quarantine-restore" || verb == "quarantine-delete") {
    if (args.empty()) {
      reply.Err(verb + " needs an item id");
      return 64;
    }
    if (verb == "quarantine-delete") {
      Status s = vault_->Delete(args[0]);
      events_->Append(Event("quarantine_delete").Str("id", args[0]).Num("uid", peer.uid).Str("result", s.ok() ? "ok" : s.message()));
      if (!s.ok()) reply.Err(s.message());
      return s.ok() ? 0 : 1;
    }
    quarantine::RestoreOptions o;
    std::string data_dir;
    {
      std::lock_guard<std::mutex> lock(config_mu_);
      data_dir = config_.data_dir;
    }
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--force") o.force = true;
      else if (args[i] == "--allow") o.allow_list_path = data_dir + "/restored.allow";
      else if (args[i] == "--to" && i + 1 < args.size()) o.to = args[++i];
      else {
        reply.Err("unknown restore option " + args[i]);
        return 64;
      }
    }
    auto r = RestoreItem(args[0], o);
    events_->Append(Event("quarantine_restore").Str("id", args[0]).Num("uid", peer.uid)
                        .Str("result", r.ok() ? "restored" : r.status().message())
                        .Str("path", r.ok() ? r->restore_target : ""));
    if (!r.ok()) {
      reply.Err(r.status().message());
      return 1;
    }
    reply.Out("restored " + r->restore_target + " (" + r->sha256 + ")");
    return 0;
  }
  if (verb == "update") {
    if (args.size() != 1) {
      reply.Err("update needs one bundle file");
      return 64;
    }
    Status s = InstallBundle(args[0]);
    events_->Append(Event("signature_update").Str("bundle", args[0]).Num("uid", peer.uid)
                        .Str("result", s.ok() ? "installed" : s.message()));
    if (!s.ok()) {
      reply.Err("update refused: " + s.message());
      return 1;
    }
    reply.Out("installed bundle version " + std::to_string(signatures_.version()));
    return 0;
  }
  reply.Err("unknown request '" + verb + "'");
  return 64;
}

Status Agent::InstallBundle(const std::string& path) {
  AgentConfig c;
  {
    std::lock_guard<std::mutex> lock(config_mu_);
    c = config_;
  }
  c.signatures = {path};
  uint64_t current = signatures_.version();
  auto done = signatures_.InstallInBackground([c, current] { return LoadConfiguredSignatures(c, current); });
  Status s = done.get();
  if (s.ok() && monitor_) monitor_->ClearCleanMarks();
  return s;
}

Result<quarantine::Record> Agent::RestoreItem(const std::string& id, const quarantine::RestoreOptions& o) {
  auto r = vault_->Restore(id, o);
  if (r.ok() && !o.allow_list_path.empty()) {
    std::string raw;
    std::lock_guard<std::mutex> lock(config_mu_);
    if (HexDecode(r->sha256, &raw)) restored_allow_.AddSha256(raw);  // not caught again
  }
  return r;
}

CommandOps Agent::MakeCommandOps() {
  CommandOps ops;
  ops.scan = [this](const std::vector<std::string>& paths, bool apply_policy, const std::string& command_id,
                    scanner::TreeScanProgress* progress) -> Result<v1::ScanSummary> {
    auto start = std::chrono::steady_clock::now();
    std::atomic<uint64_t> reported{0};
    int code = RunScan(paths, false, "command", false, nullptr, command_id, apply_policy, progress, &reported);
    v1::ScanSummary s;
    s.set_files_scanned(progress->files.load());
    s.set_findings(reported.load());
    if (code == 1 && reported == 0) code = 0;  // everything found was allow-listed
    s.set_errors(progress->errors.load() + progress->incomplete.load());
    s.set_exit_code(code);
    s.set_duration_ms(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count()));
    return s;
  };
  ops.quarantine_list = [this] { return vault_->List(); };
  ops.quarantine_restore = [this](const std::string& id, const std::string& to, bool allow) {
    quarantine::RestoreOptions o;
    o.to = to;
    if (allow) {
      std::lock_guard<std::mutex> lock(config_mu_);
      o.allow_list_path = config_.data_dir + "/restored.allow";
    }
    return RestoreItem(id, o);
  };
  ops.quarantine_delete = [this](const std::string& id) { return vault_->Delete(id); };
  ops.install_bundle = [this](const std::string& path) {
    Status s = InstallBundle(path);
    if (!s.ok()) return s;
    // Kept for restarts and reloads, which use it while it is newer than the configured signatures.
    std::string keep;
    {
      std::lock_guard<std::mutex> lock(config_mu_);
      keep = PushedBundlePath(config_);
    }
    Status dir = MakeDirs(keep.substr(0, keep.rfind('/')), 0700);
    if (!dir.ok() || ::rename(path.c_str(), keep.c_str()) != 0) {
      MAMORI_LOG(kWarning, "pushed bundle installed but not kept for restarts: " << (dir.ok() ? std::strerror(errno) : dir.message()));
    }
    return s;
  };
  ops.info = [this] { return Info(); };
  ops.kill = [this](pid_t pid, uint64_t start_time_ns, bool tree) -> Status {
    if (responder_->Protected(pid)) {
      return Status(StatusCode::kPermissionDenied, "process " + std::to_string(pid) +
                                                       " is protected (the agent, its ancestors, PID 1 or a kernel thread)");
    }
    behavior::ResponseOutcome out = tree ? responder_->KillTree(pid, start_time_ns) : responder_->KillProcess(pid, start_time_ns);
    if (out.done) return Status::Ok();
    return Status(out.detail.find("exited") != std::string::npos ? StatusCode::kNotFound : StatusCode::kFailedPrecondition,
                  out.detail);
  };
  return ops;
}

}  // namespace mamori::agent
