// mamori-sig: builds, signs, verifies and inspects signature bundles; imports
// existing signature formats; profiles YARA rules.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mamori/common/file_util.h"
#include "mamori/signatures/bundle.h"
#include "mamori/signatures/importers.h"
#include "mamori/signatures/keys.h"
#include "mamori/signatures/profile.h"

namespace {

using namespace mamori;  // NOLINT(google-build-using-namespace): tool main
using signatures::TrustedKeys;

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 64;

constexpr const char* kUsageText =
    "usage: mamori-sig <command> ...\n"
    "\n"
    "  keygen NAME                      write NAME.key (private, 0600) and NAME.pub; print the key id\n"
    "  build DIR -o BUNDLE --version N --key KEY [--strict]\n"
    "                                   DIR holds hashes/ yara/ allowlist/ behavior/\n"
    "  verify BUNDLE --pubkey PUB... [--min-version N]\n"
    "  inspect BUNDLE [--pubkey PUB...] version, counts, parts, signer\n"
    "  import clamav FILE... -o OUT.mhdb [--allow-out OUT.allow]\n"
    "  import sha256-list FILE -o OUT.mhdb [--name NAME] [--column COLUMN]\n"
    "  diff OLD NEW [--pubkey PUB...]   what changed between two bundles\n"
    "  profile RULES... --corpus DIR [--top N] [--max-bytes BYTES]\n"
    "                                   per-rule scan cost, slowest first\n";

struct Args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> options;  // --name value
  std::set<std::string> flags;                               // --flag

  // `valued`: options that take a value.
  static Result<Args> Parse(const std::vector<std::string>& in, const std::set<std::string>& valued,
                            const std::set<std::string>& boolean) {
    Args a;
    for (size_t i = 0; i < in.size(); ++i) {
      const std::string& s = in[i];
      if (s.size() > 1 && s[0] == '-') {
        if (valued.count(s) != 0) {
          if (i + 1 >= in.size()) return InvalidArgumentError(s + " needs a value");
          a.options.emplace_back(s, in[++i]);
        } else if (boolean.count(s) != 0) {
          a.flags.insert(s);
        } else {
          return InvalidArgumentError("unknown option " + s);
        }
      } else {
        a.positional.push_back(s);
      }
    }
    return a;
  }
  std::string Get(const std::string& name, const std::string& def = "") const {
    for (const auto& [k, v] : options) {
      if (k == name) return v;
    }
    return def;
  }
  std::vector<std::string> All(const std::string& name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : options) {
      if (k == name) out.push_back(v);
    }
    return out;
  }
};

int Fail(const Status& s) {
  std::fprintf(stderr, "mamori-sig: %s\n", s.message().c_str());
  return kFailed;
}

int UsageError(const std::string& what) {
  std::fprintf(stderr, "mamori-sig: %s\n\n%s", what.c_str(), kUsageText);
  return kUsage;
}

Result<uint64_t> ParseNumber(const std::string& s, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || s[0] == '-' || errno != 0 || *end != '\0') return InvalidArgumentError(what + " must be a number");
  return static_cast<uint64_t>(v);
}

Result<TrustedKeys> LoadKeys(const std::vector<std::string>& files) {
  TrustedKeys keys;
  for (const auto& f : files) MAMORI_RETURN_IF_ERROR(keys.AddFile(f));
  return keys;
}

int Keygen(const Args& a) {
  if (a.positional.size() != 1) return UsageError("keygen needs NAME");
  const std::string& name = a.positional[0];
  auto key = signatures::PrivateKey::Generate(name + ".key", name + ".pub");
  if (!key.ok()) return Fail(key.status());
  std::printf("wrote %s.key (keep it secret) and %s.pub\nkey id %s\n", name.c_str(), name.c_str(),
              key->public_key().key_id().c_str());
  return kOk;
}

int Build(const Args& a) {
  if (a.positional.size() != 1) return UsageError("build needs DIR");
  std::string out = a.Get("-o"), key_path = a.Get("--key"), version = a.Get("--version");
  if (out.empty() || key_path.empty() || version.empty()) return UsageError("build needs -o, --key and --version");
  auto v = ParseNumber(version, "--version");
  if (!v.ok()) return Fail(v.status());
  auto key = signatures::PrivateKey::Load(key_path);
  if (!key.ok()) return Fail(key.status());
  signatures::BuildOptions options;
  options.version = *v;
  options.strict = a.flags.count("--strict") != 0;
  auto report = signatures::BuildBundle(a.positional[0], out, *key, options);
  if (!report.ok()) return Fail(report.status());
  for (const auto& w : report->warnings) {
    std::fprintf(stderr, "warning: %s:%d: %s%s\n", w.path.c_str(), w.line,
                 w.rule.empty() ? "" : ("rule " + w.rule + ": ").c_str(), w.message.c_str());
  }
  std::printf("wrote %s: version %llu, signed by %s, %zu hashes, %zu YARA rules, %zu allow-list entries, "
              "%zu behavior files, %zu parts\n",
              out.c_str(), static_cast<unsigned long long>(*v), key->public_key().key_id().c_str(),
              report->hash_count, report->rule_count, report->allow_count, report->behavior_files,
              report->manifest.parts.size());
  return kOk;
}

int Verify(const Args& a) {
  if (a.positional.size() != 1) return UsageError("verify needs BUNDLE");
  auto keys = LoadKeys(a.All("--pubkey"));
  if (!keys.ok()) return Fail(keys.status());
  if (keys->empty()) return UsageError("verify needs at least one --pubkey");
  signatures::ReadOptions options;
  if (std::string mv = a.Get("--min-version"); !mv.empty()) {
    auto v = ParseNumber(mv, "--min-version");
    if (!v.ok()) return Fail(v.status());
    options.min_exclusive_version = *v;
  }
  auto set = signatures::LoadBundle(a.positional[0], *keys, options);
  if (!set.ok()) return Fail(set.status());
  std::printf("OK %s: version %llu, signed by %s, %zu hashes, %zu YARA rules\n", a.positional[0].c_str(),
              static_cast<unsigned long long>((*set)->bundle_version), (*set)->publisher_key_id.c_str(),
              (*set)->hashes.size(), (*set)->yara ? (*set)->yara->rule_count() : size_t{0});
  return kOk;
}

int Inspect(const Args& a) {
  if (a.positional.size() != 1) return UsageError("inspect needs BUNDLE");
  const std::string& path = a.positional[0];
  auto keys = LoadKeys(a.All("--pubkey"));
  if (!keys.ok()) return Fail(keys.status());
  signatures::Manifest m;
  std::shared_ptr<const scanner::SignatureSet> set;
  if (!keys->empty()) {
    auto bundle = signatures::ReadBundle(path, *keys);
    if (!bundle.ok()) return Fail(bundle.status());
    auto built = scanner::BuildSignatureSet(bundle->parts, bundle->manifest.version, bundle->manifest.key_id);
    if (!built.ok()) return Fail(built.status());
    m = bundle->manifest;
    set = *built;
  } else {
    auto manifest = signatures::ReadManifestUnverified(path);
    if (!manifest.ok()) return Fail(manifest.status());
    m = *manifest;
  }
  std::printf("bundle     %s\nformat     %d\nversion    %llu\ncreated    %s\nsigner     %s (%s)\n", path.c_str(),
              m.format, static_cast<unsigned long long>(m.version), m.created.c_str(), m.key_id.c_str(),
              set ? "signature verified" : "signature NOT verified: pass --pubkey");
  if (set) {
    std::printf("hashes     %zu\nyara rules %zu\nallow-list %zu hashes, %zu path globs\n", set->hashes.size(),
                set->yara ? set->yara->rule_count() : size_t{0}, set->allow.sha256_count(), set->allow.glob_count());
  }
  std::printf("parts      %zu\n", m.parts.size());
  for (const auto& p : m.parts) {
    std::printf("  %12llu  %s  %s\n", static_cast<unsigned long long>(p.size), p.sha256.substr(0, 16).c_str(),
                p.path.c_str());
  }
  return kOk;
}

int Import(const Args& a) {
  if (a.positional.size() < 2) return UsageError("import needs a kind (clamav, sha256-list) and FILE");
  const std::string& kind = a.positional[0];
  std::vector<std::string> files(a.positional.begin() + 1, a.positional.end());
  std::string out = a.Get("-o");
  if (out.empty()) return UsageError("import needs -o OUT.mhdb");
  signatures::ImportResult result;
  Status s;
  if (kind == "clamav") {
    s = signatures::ImportClamav(files, &result);
  } else if (kind == "sha256-list") {
    if (files.size() != 1) return UsageError("import sha256-list takes one FILE");
    std::string name = a.Get("--name");
    if (name.empty()) {
      std::string base = files[0].substr(files[0].rfind('/') + 1);
      name = "Mamori.Feed." + base.substr(0, base.find('.'));
    }
    s = signatures::ImportSha256List(files[0], name, a.Get("--column"), &result);
  } else {
    return UsageError("unknown import kind '" + kind + "'");
  }
  if (!s.ok()) return Fail(s);
  if (auto slash = out.rfind('/'); slash != std::string::npos && slash > 0) {
    if (Status made = MakeDirs(out.substr(0, slash)); !made.ok()) return Fail(made);
  }
  s = WriteFileAtomically(out, "# imported by mamori-sig from " + files[0] + (files.size() > 1 ? " and others" : "") +
                                   "\n" + result.hashes, 0644);
  if (!s.ok()) return Fail(s);
  if (std::string allow_out = a.Get("--allow-out"); !allow_out.empty()) {
    s = WriteFileAtomically(allow_out, result.allow, 0644);
    if (!s.ok()) return Fail(s);
  } else if (result.taken_allow > 0) {
    std::fprintf(stderr, "note: %zu allow-list entries found; pass --allow-out to keep them\n", result.taken_allow);
  }
  for (const auto& skip : result.skipped) std::fprintf(stderr, "skipped %s: %s\n", skip.where.c_str(), skip.reason.c_str());
  std::printf("taken %zu hash signatures, %zu allow-list entries; skipped %zu\n", result.taken_hashes,
              result.taken_allow, result.skipped.size());
  return kOk;
}

int Diff(const Args& a) {
  if (a.positional.size() != 2) return UsageError("diff needs OLD and NEW");
  auto keys = LoadKeys(a.All("--pubkey"));
  if (!keys.ok()) return Fail(keys.status());
  std::vector<signatures::Manifest> m(2);
  std::vector<std::shared_ptr<const scanner::SignatureSet>> sets(2);
  for (int i = 0; i < 2; ++i) {
    if (!keys->empty()) {
      auto b = signatures::ReadBundle(a.positional[static_cast<size_t>(i)], *keys);
      if (!b.ok()) return Fail(b.status());
      auto set = scanner::BuildSignatureSet(b->parts, b->manifest.version, b->manifest.key_id);
      if (!set.ok()) return Fail(set.status());
      m[static_cast<size_t>(i)] = b->manifest;
      sets[static_cast<size_t>(i)] = *set;
    } else {
      auto man = signatures::ReadManifestUnverified(a.positional[static_cast<size_t>(i)]);
      if (!man.ok()) return Fail(man.status());
      m[static_cast<size_t>(i)] = *man;
    }
  }
  std::printf("version %llu -> %llu%s\n", static_cast<unsigned long long>(m[0].version),
              static_cast<unsigned long long>(m[1].version), keys->empty() ? " (signatures NOT verified)" : "");
  if (m[0].key_id != m[1].key_id) std::printf("signer  %s -> %s\n", m[0].key_id.c_str(), m[1].key_id.c_str());
  std::map<std::string, std::string> old_parts, new_parts;
  for (const auto& p : m[0].parts) old_parts[p.path] = p.sha256;
  for (const auto& p : m[1].parts) new_parts[p.path] = p.sha256;
  for (const auto& [path, sha] : new_parts) {
    auto it = old_parts.find(path);
    if (it == old_parts.end()) std::printf("+ %s\n", path.c_str());
    else if (it->second != sha) std::printf("~ %s\n", path.c_str());
  }
  for (const auto& [path, sha] : old_parts) {
    if (new_parts.count(path) == 0) std::printf("- %s\n", path.c_str());
  }
  if (sets[0] && sets[1]) {
    std::printf("hashes     %zu -> %zu\n", sets[0]->hashes.size(), sets[1]->hashes.size());
    std::vector<std::string> r0 = sets[0]->yara ? sets[0]->yara->RuleNames() : std::vector<std::string>{};
    std::vector<std::string> r1 = sets[1]->yara ? sets[1]->yara->RuleNames() : std::vector<std::string>{};
    std::set<std::string> s0(r0.begin(), r0.end()), s1(r1.begin(), r1.end());
    for (const auto& r : s1) {
      if (s0.count(r) == 0) std::printf("+ rule %s\n", r.c_str());
    }
    for (const auto& r : s0) {
      if (s1.count(r) == 0) std::printf("- rule %s\n", r.c_str());
    }
  }
  return kOk;
}

int Profile(const Args& a) {
  if (a.positional.empty()) return UsageError("profile needs RULES...");
  std::string corpus = a.Get("--corpus");
  if (corpus.empty()) return UsageError("profile needs --corpus DIR");
  auto top = ParseNumber(a.Get("--top", "25"), "--top");
  auto max_bytes = ParseNumber(a.Get("--max-bytes", "33554432"), "--max-bytes");
  if (!top.ok()) return Fail(top.status());
  if (!max_bytes.ok()) return Fail(max_bytes.status());
  auto report = signatures::ProfileRules(a.positional, corpus, *max_bytes);
  if (!report.ok()) return Fail(report.status());
  std::printf("corpus: %zu files, %.1f MB held in memory\n", report->corpus_files, report->corpus_bytes / 1e6);
  std::printf("all rules together: %.3f s; one pass with one plain string (baseline): %.3f s\n",
              report->all_rules_seconds, report->baseline_seconds);
  std::printf("cost of each rule beyond the baseline, slowest first; 'of set' compares it with the whole set\n"
              "compiled together (rules measured alone repeat the shared string search, so their sum overstates)\n\n");
  std::printf("%10s %7s  %s\n", "extra s", "of set", "rule (where)");
  size_t shown = 0;
  size_t failed = 0;
  for (const auto& r : report->rules) {
    if (!r.error.empty()) {
      ++failed;
      continue;
    }
    if (shown++ >= *top) continue;
    std::printf("%9.4f%s %6.1f%%  %s (%s)\n", r.extra, r.capped ? "+" : " ",
                report->all_rules_seconds > 0 ? 100 * r.extra / report->all_rules_seconds : 0, r.rule.c_str(),
                r.where.c_str());
  }
  if (failed > 0) std::printf("\n%zu rule(s) could not be compiled alone and were not measured\n", failed);
  std::printf("(+ = stopped at the 10 s per-rule budget: the rule costs more than shown)\n");
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsageText, args.empty() ? stderr : stdout);
    return args.empty() ? kUsage : kOk;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  auto parsed = Args::Parse(args, {"-o", "--key", "--version", "--pubkey", "--min-version", "--allow-out", "--name",
                                   "--column", "--corpus", "--top", "--max-bytes"},
                            {"--strict"});
  if (!parsed.ok()) return UsageError(parsed.status().message());
  if (cmd == "keygen") return Keygen(*parsed);
  if (cmd == "build") return Build(*parsed);
  if (cmd == "verify") return Verify(*parsed);
  if (cmd == "inspect") return Inspect(*parsed);
  if (cmd == "import") return Import(*parsed);
  if (cmd == "diff") return Diff(*parsed);
  if (cmd == "profile") return Profile(*parsed);
  return UsageError("unknown command '" + cmd + "'");
}
