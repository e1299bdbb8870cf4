#include "scan_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <algorithm>
#include <filesystem>

#include "mamori/common/json.h"
#include "mamori/signatures/bundle.h"
#include "mamori/scanner/signature_set.h"
#include "mamori/scanner/parser_pool.h"
#include "mamori/scanner/tree_scan.h"
#include "mamori/scanner/verdict_cache.h"

namespace mamori::cli {
namespace {

using scanner::ScanReport;
using scanner::Verdict;

constexpr int kExitClean = 0;
constexpr int kExitFound = 1;
constexpr int kExitError = 2;
constexpr int kExitUsage = 64;
constexpr const char* kTrustedKeysDir = "/etc/mamori/trusted-keys";

constexpr const char* kScanUsage =
    "usage: mamori scan [options] PATH...\n"
    "\n"
    "Scans files and directories in this process. Exit status: 0 nothing found,\n"
    "1 found, 2 error or something could not be scanned completely.\n"
    "\n"
    "options:\n"
    "  --json                    one JSON object per line: findings, incomplete, errors, summary\n"
    "  --signatures PATH         signature directory or file (repeatable; default: shipped set),\n"
    "                            or one signed bundle (*.mbundle), verified with --pubkey\n"
    "  --pubkey FILE             trusted bundle publisher key (repeatable; default:\n"
    "                            /etc/mamori/trusted-keys/*.pub)\n"
    "  --no-cache                do not use or update the verdict cache\n"
    "  --cache-file FILE         verdict cache location\n"
    "  --threads N               worker threads (default: number of cores)\n"
    "  --exclude GLOB            skip matching paths (repeatable; with '/' matches the path)\n"
    "  --one-file-system         do not cross mount points below a root\n"
    "  --follow-symlinks         follow symlinks met inside directories\n"
    "  --max-depth N             container/mail nesting depth (default 16)\n"
    "  --max-member-size SIZE    bytes scanned per archive member (default 100M)\n"
    "  --max-total-size SIZE     bytes extracted per file (default 400M)\n"
    "  --max-members N           members per file (default 10000)\n"
    "  --max-ratio N             decompression ratio per container (default 250)\n"
    "  --max-scan-time SECONDS   time per file (default 120)\n"
    "  --max-in-memory SIZE      files above this are streamed (default 64M)\n"
    "  --scan-archives=no        do not open archives and compressed files\n"
    "  --scan-mail=no            do not decode mail files\n"
    "  --no-sandbox              open archives and mail in this process instead of confined\n"
    "                            worker processes (no capabilities, seccomp; the default)\n"
    "  --no-size-prefilter       hash every file even when no sized hash signature can match\n"
    "  --infected, -i            print only findings (no incomplete/errors lines)\n"
    "  --quiet, -q               no summary\n"
    "  --no-progress             no live progress line on a terminal\n";

struct Flags {
  bool json = false;
  std::vector<std::string> signatures;
  std::vector<std::string> pubkeys;
  bool no_cache = false;
  std::string cache_file;
  scanner::TreeScanOptions tree;
  bool infected_only = false;
  bool quiet = false;
  bool progress = true;
  bool sandbox = true;
  std::vector<std::string> paths;
};

std::optional<uint64_t> ParseSize(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || s[0] == '-') return std::nullopt;
  uint64_t mult = 1;
  std::string suffix(end);
  if (suffix == "" ) mult = 1;
  else if (suffix == "K" || suffix == "k") mult = 1ull << 10;
  else if (suffix == "M" || suffix == "m") mult = 1ull << 20;
  else if (suffix == "G" || suffix == "g") mult = 1ull << 30;
  else return std::nullopt;
  if (v > UINT64_MAX / mult) return std::nullopt;
  return v * mult;
}

// Returns an error message, empty on success.
std::string ParseFlags(const std::vector<std::string>& args, Flags* f) {
  auto& lim = f->tree.scan.limits;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) -> bool {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    auto number = [&](uint64_t* out) -> std::string {
      std::string v;
      if (!value(&v)) return a + " needs a value";
      auto n = ParseSize(v);
      if (!n) return a + ": '" + v + "' is not a number (suffixes K, M, G allowed)";
      *out = *n;
      return "";
    };
    std::string v, err;
    uint64_t n = 0;
    if (a == "--json") f->json = true;
    else if (a == "--signatures") { if (!value(&v)) return a + " needs a path"; f->signatures.push_back(v); }
    else if (a == "--pubkey") { if (!value(&v)) return a + " needs a path"; f->pubkeys.push_back(v); }
    else if (a == "--no-cache") f->no_cache = true;
    else if (a == "--cache-file") { if (!value(&f->cache_file)) return a + " needs a path"; }
    else if (a == "--threads") { if (!(err = number(&n)).empty()) return err; if (n == 0 || n > 256) return "--threads must be 1..256"; f->tree.threads = static_cast<unsigned>(n); }
    else if (a == "--exclude") { if (!value(&v)) return a + " needs a pattern"; f->tree.exclude.push_back(v); }
    else if (a == "--one-file-system") f->tree.one_file_system = true;
    else if (a == "--follow-symlinks") f->tree.follow_symlinks = true;
    else if (a == "--max-depth") { if (!(err = number(&n)).empty()) return err; if (n > 1000) return "--max-depth must be <= 1000"; lim.max_depth = static_cast<int>(n); }
    else if (a == "--max-member-size") { if (!(err = number(&lim.max_member_size)).empty()) return err; }
    else if (a == "--max-total-size") { if (!(err = number(&lim.max_total_extracted)).empty()) return err; }
    else if (a == "--max-members") { if (!(err = number(&lim.max_members)).empty()) return err; }
    else if (a == "--max-ratio") { if (!(err = number(&lim.max_ratio)).empty()) return err; }
    else if (a == "--max-scan-time") { if (!(err = number(&n)).empty()) return err; lim.max_scan_time = std::chrono::seconds(n); }
    else if (a == "--max-in-memory") { if (!(err = number(&lim.max_in_memory)).empty()) return err; if (lim.max_in_memory == 0) return "--max-in-memory must be > 0"; }
    else if (a == "--no-size-prefilter") f->tree.scan.size_prefilter = false;
    else if (a == "--scan-archives=no") f->tree.scan.open_containers = false;
    else if (a == "--scan-archives=yes") f->tree.scan.open_containers = true;
    else if (a == "--scan-mail=no") f->tree.scan.open_mail = false;
    else if (a == "--scan-mail=yes") f->tree.scan.open_mail = true;
    else if (a == "--infected" || a == "-i") f->infected_only = true;
    else if (a == "--quiet" || a == "-q") f->quiet = true;
    else if (a == "--no-progress") f->progress = false;
    else if (a == "--no-sandbox") f->sandbox = false;
    else if (a == "--sandbox") f->sandbox = true;
    else if (a == "--") { f->paths.insert(f->paths.end(), args.begin() + static_cast<long>(i) + 1, args.end()); break; }
    else if (a.size() > 1 && a[0] == '-') return "unknown option '" + a + "'";
    else f->paths.push_back(a);
  }
  if (f->paths.empty()) return "no path to scan";
  return "";
}

std::string DefaultCacheFile() {
  if (::geteuid() == 0) return "/var/cache/mamori/scan-verdicts.bin";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
    return std::string(xdg) + "/mamori/scan-verdicts.bin";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    return std::string(home) + "/.cache/mamori/scan-verdicts.bin";
  }
  return "";
}

bool IsDir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Human output and JSON lines; called serialized by ScanTree.
class Printer {
 public:
  explicit Printer(const Flags& f) : f_(f) {}

  void Print(const ScanReport& r) {
    std::lock_guard<std::mutex> lock(mu_);
    ClearProgressLocked();
    if (f_.json) PrintJson(r);
    else PrintHuman(r);
    std::fflush(stdout);
  }

  // The live line goes to stderr so that stdout stays clean for pipes.
  void Progress(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    progress_shown_ = true;
  }
  void ClearProgress() {
    std::lock_guard<std::mutex> lock(mu_);
    ClearProgressLocked();
  }

 private:
  void ClearProgressLocked() {
    if (!progress_shown_) return;
    std::fputs("\r\033[K", stderr);
    progress_shown_ = false;
  }

  void PrintHuman(const ScanReport& r) {
    for (const auto& fd : r.findings) std::printf("%s: %s FOUND\n", fd.object.c_str(), fd.signature.c_str());
    if (f_.infected_only) return;
    if (r.verdict == Verdict::kError) std::fprintf(stderr, "%s: ERROR: %s\n", r.path.c_str(), r.error.c_str());
    for (const auto& why : r.incomplete) std::printf("%s: INCOMPLETE: %s\n", r.path.c_str(), why.c_str());
  }

  void PrintJson(const ScanReport& r) {
    using json::Quote;
    for (const auto& fd : r.findings) {
      std::string line = "{\"type\":\"finding\",\"path\":" + Quote(r.path) + ",\"object\":" + Quote(fd.object) +
                         ",\"signature\":" + Quote(fd.signature) + ",\"engine\":" +
                         (fd.kind == scanner::FindingKind::kHash ? "\"hash\"" : "\"yara\"");
      if (!fd.name_space.empty()) line += ",\"namespace\":" + Quote(fd.name_space);
      if (!fd.tags.empty()) {
        line += ",\"tags\":[";
        for (size_t i = 0; i < fd.tags.size(); ++i) line += (i ? "," : "") + Quote(fd.tags[i]);
        line += "]";
      }
      if (!fd.meta.empty()) {
        line += ",\"meta\":{";
        for (size_t i = 0; i < fd.meta.size(); ++i) {
          line += (i ? "," : "") + Quote(fd.meta[i].first) + ":" + Quote(fd.meta[i].second);
        }
        line += "}";
      }
      if (!fd.sha256.empty()) line += ",\"sha256\":" + Quote(fd.sha256);
      line += "}";
      std::puts(line.c_str());
    }
    if (f_.infected_only) return;
    for (const auto& why : r.incomplete) {
      std::puts(("{\"type\":\"incomplete\",\"path\":" + Quote(r.path) + ",\"reason\":" + Quote(why) + "}").c_str());
    }
    if (r.verdict == Verdict::kError) {
      std::puts(("{\"type\":\"error\",\"path\":" + Quote(r.path) + ",\"message\":" + Quote(r.error) + "}").c_str());
    }
  }

  const Flags& f_;
  std::mutex mu_;
  bool progress_shown_ = false;  // guarded by mu_
};

std::string HumanBytes(double b) {
  char buf[32];
  if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.2f MB", b / 1e6);
  else if (b >= 1e3) std::snprintf(buf, sizeof buf, "%.2f KB", b / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f B", b);
  return buf;
}

Result<std::shared_ptr<const scanner::SignatureSet>> LoadSignaturesOrBundle(const std::vector<std::string>& paths,
                                                                            std::vector<std::string> pubkeys) {
  // Without --pubkey, a bundle is verified with the keys installed for the agent.
  if (pubkeys.empty() && std::any_of(paths.begin(), paths.end(), signatures::IsBundlePath)) {
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(kTrustedKeysDir, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      if (it->path().extension() == ".pub") pubkeys.push_back(it->path().string());
    }
    if (pubkeys.empty()) {
      return InvalidArgumentError(std::string("no trusted key to verify a bundle: pass --pubkey or install one in ") +
                                  kTrustedKeysDir);
    }
  }
  return signatures::LoadSignatureSources(paths, pubkeys);
}

}  // namespace

std::string DefaultSignaturesDir() {
  if (const char* env = std::getenv("MAMORI_SIGNATURES_DIR"); env != nullptr && *env != '\0') return env;
  if (IsDir(MAMORI_INSTALLED_SIGNATURES)) return MAMORI_INSTALLED_SIGNATURES;
  return MAMORI_SOURCE_SIGNATURES;
}

int RunScan(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(kScanUsage, stdout);
      return kExitClean;
    }
  }
  Flags f;
  if (std::string err = ParseFlags(args, &f); !err.empty()) {
    std::fprintf(stderr, "mamori scan: %s\n\n%s", err.c_str(), kScanUsage);
    return kExitUsage;
  }
  if (f.signatures.empty()) f.signatures.push_back(DefaultSignaturesDir());
  auto sigs = LoadSignaturesOrBundle(f.signatures, f.pubkeys);
  if (!sigs.ok()) {
    std::fprintf(stderr, "mamori scan: cannot load signatures: %s\n", sigs.status().message().c_str());
    return kExitError;
  }

  std::unique_ptr<scanner::VerdictCache> cache;
  if (!f.no_cache) {
    std::string file = f.cache_file.empty() ? DefaultCacheFile() : f.cache_file;
    cache = std::make_unique<scanner::VerdictCache>(file, (*sigs)->version);
    f.tree.cache = cache.get();
  }

  // Archives and mail are opened in confined worker processes, one per scan
  // thread so that threads do not queue for them (docs/least-privilege.md).
  // Results are the same either way; a sandbox that cannot start is reported
  // and the scan goes on in process.
  if (f.sandbox && (f.tree.scan.open_containers || f.tree.scan.open_mail)) {
    scanner::ParserPoolOptions po;
    unsigned threads = f.tree.threads != 0 ? f.tree.threads : std::max(1u, std::thread::hardware_concurrency());
    po.workers = static_cast<int>(std::min(threads, 64u));
    auto pool = scanner::ParserPool::Start(po);
    if (pool.ok()) {
      f.tree.scan.parser_pool = std::move(*pool);
    } else {
      std::fprintf(stderr, "mamori scan: warning: parser sandbox unavailable, archives and mail are opened in this "
                           "process: %s\n", pool.status().message().c_str());
    }
  }

  Printer printer(f);
  scanner::TreeScanProgress progress;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  // Live progress on a terminal for scans that take longer than a second.
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  std::thread progress_thread;
  if (f.progress && !f.json && ::isatty(STDERR_FILENO)) {
    progress_thread = std::thread([&] {
      std::unique_lock<std::mutex> lock(done_mu);
      if (done_cv.wait_for(lock, std::chrono::seconds(1), [&] { return done; })) return;
      while (!done) {
        double secs = elapsed();
        std::string path = progress.current_path();
        if (path.size() > 60) path = "..." + path.substr(path.size() - 57);
        char line[256];
        std::snprintf(line, sizeof line, "%llu files, %s, %s/s, %llu found  %s",
                      static_cast<unsigned long long>(progress.files.load()),
                      HumanBytes(static_cast<double>(progress.bytes.load())).c_str(),
                      HumanBytes(static_cast<double>(progress.bytes.load()) / std::max(secs, 1e-9)).c_str(),
                      static_cast<unsigned long long>(progress.found.load()), path.c_str());
        printer.Progress(line);
        done_cv.wait_for(lock, std::chrono::milliseconds(250), [&] { return done; });
      }
    });
  }

  Status st = scanner::ScanTree(*sigs, f.paths, f.tree, [&](const ScanReport& r) { printer.Print(r); }, &progress);
  {
    std::lock_guard<std::mutex> lock(done_mu);
    done = true;
  }
  done_cv.notify_all();
  if (progress_thread.joinable()) progress_thread.join();
  printer.ClearProgress();
  if (!st.ok()) {
    std::fprintf(stderr, "mamori scan: %s\n", st.message().c_str());
    return kExitError;
  }
  if (cache) {
    if (Status s = cache->Save(); !s.ok()) std::fprintf(stderr, "mamori scan: warning: verdict cache not saved: %s\n", s.message().c_str());
  }

  const double secs = elapsed();
  const double mbps = static_cast<double>(progress.bytes.load()) / 1e6 / std::max(secs, 1e-9);
  const auto& s = **sigs;
  const size_t rules = s.yara ? s.yara->rule_count() : 0;
  const auto& pool = f.tree.scan.parser_pool;
  const unsigned long long sandboxed = pool ? pool->stats().requests : 0;
  if (f.json) {
    char line[1024];
    std::snprintf(line, sizeof line,
                  "{\"type\":\"summary\",\"files\":%llu,\"bytes\":%llu,\"cached\":%llu,\"found\":%llu,"
                  "\"incomplete\":%llu,\"errors\":%llu,\"skipped\":%llu,\"elapsed_s\":%.3f,\"mb_per_s\":%.1f,"
                  "\"hash_signatures\":%zu,\"yara_rules\":%zu,\"signature_version\":\"%s\",\"sandboxed_parses\":%llu}",
                  static_cast<unsigned long long>(progress.files.load()),
                  static_cast<unsigned long long>(progress.bytes.load()),
                  static_cast<unsigned long long>(progress.cached.load()),
                  static_cast<unsigned long long>(progress.found.load()),
                  static_cast<unsigned long long>(progress.incomplete.load()),
                  static_cast<unsigned long long>(progress.errors.load()),
                  static_cast<unsigned long long>(progress.skipped.load()), secs, mbps, s.hashes.size(), rules,
                  s.version.c_str(), sandboxed);
    std::puts(line);
  } else if (!f.quiet) {
    std::printf("\n----------- SCAN SUMMARY -----------\n");
    std::printf("Signatures: %zu hashes, %zu YARA rules (version %.12s)\n", s.hashes.size(), rules, s.version.c_str());
    std::printf("Scanned files: %llu (%llu from cache)\n", static_cast<unsigned long long>(progress.files.load()),
                static_cast<unsigned long long>(progress.cached.load()));
    std::printf("Scanned data: %s\n", HumanBytes(static_cast<double>(progress.bytes.load())).c_str());
    std::printf("Rate: %.1f MB/s\n", mbps);
    std::printf("Found: %llu\n", static_cast<unsigned long long>(progress.found.load()));
    std::printf("Incomplete: %llu\n", static_cast<unsigned long long>(progress.incomplete.load()));
    std::printf("Errors: %llu\n", static_cast<unsigned long long>(progress.errors.load()));
    if (pool) std::printf("Archives and mail: %llu opened in sandboxed workers\n", sandboxed);
    std::printf("Skipped: %llu\n", static_cast<unsigned long long>(progress.skipped.load()));
    std::printf("Elapsed: %.3f s\n", secs);
  }
  std::fflush(stdout);
  if (progress.found > 0) return kExitFound;
  if (progress.errors > 0 || progress.incomplete > 0) return kExitError;
  return kExitClean;
}

}  // namespace mamori::cli
