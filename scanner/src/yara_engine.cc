#include "mamori/scanner/yara_engine.h"

#include <yara.h>

#include <cstdio>
#include <mutex>

#include "mamori/common/file_util.h"

namespace mamori::scanner {
namespace {

// libyara needs one process-wide yr_initialize(); it is reference counted, so
// we take one reference for the process on first use and keep it.
Status EnsureYaraInitialized() {
  static std::once_flag once;
  static int rc = ERROR_SUCCESS;
  std::call_once(once, [] { rc = yr_initialize(); });
  if (rc != ERROR_SUCCESS) return InternalError("yr_initialize failed with code " + std::to_string(rc));
  return Status::Ok();
}

struct CompileDiagnostics {
  std::vector<std::string> errors;
  std::vector<YaraWarning> warnings;
};

void OnCompilerMessage(int level, const char* file_name, int line_number, const YR_RULE* rule,
                       const char* message, void* user_data) {
  auto* diag = static_cast<CompileDiagnostics*>(user_data);
  std::string file = file_name != nullptr ? file_name : "<rules>";
  if (level == YARA_ERROR_LEVEL_ERROR) {
    diag->errors.push_back(file + ":" + std::to_string(line_number) + ": " + (message ? message : "error"));
  } else {
    diag->warnings.push_back(YaraWarning{file, line_number, rule != nullptr && rule->identifier ? rule->identifier : "",
                                         message ? message : "warning"});
  }
}

struct ScanCallbackState {
  std::vector<YaraMatch>* out;
};

int OnScanMessage(YR_SCAN_CONTEXT* /*context*/, int message, void* message_data, void* user_data) {
  if (message != CALLBACK_MSG_RULE_MATCHING) return CALLBACK_CONTINUE;
  auto* state = static_cast<ScanCallbackState*>(user_data);
  auto* rule = static_cast<YR_RULE*>(message_data);
  YaraMatch m;
  m.rule = rule->identifier;
  m.name_space = rule->ns != nullptr && rule->ns->name != nullptr ? rule->ns->name : "default";
  const char* tag = nullptr;
  yr_rule_tags_foreach(rule, tag) { m.tags.emplace_back(tag); }
  const YR_META* meta = nullptr;
  yr_rule_metas_foreach(rule, meta) {
    std::string value;
    switch (meta->type) {
      case META_TYPE_INTEGER: value = std::to_string(meta->integer); break;
      case META_TYPE_BOOLEAN: value = meta->integer ? "true" : "false"; break;
      default: value = meta->string != nullptr ? meta->string : ""; break;
    }
    m.meta.emplace_back(meta->identifier, std::move(value));
  }
  state->out->push_back(std::move(m));
  return CALLBACK_CONTINUE;
}

int TimeoutSeconds(std::chrono::milliseconds timeout) {
  auto ms = timeout.count();
  if (ms <= 0) return 1;
  return static_cast<int>((ms + 999) / 1000);
}

Status ScanResultToStatus(int rc) {
  switch (rc) {
    case ERROR_SUCCESS: return Status::Ok();
    case ERROR_SCAN_TIMEOUT: return DeadlineExceededError("YARA scan timed out");
    case ERROR_INSUFFICIENT_MEMORY: return ResourceExhaustedError("YARA: insufficient memory");
    case ERROR_TOO_MANY_MATCHES: return ResourceExhaustedError("YARA: too many matches");
    case ERROR_COULD_NOT_MAP_FILE: return DataLossError("YARA could not map the file");
    default: return InternalError("YARA scan failed with code " + std::to_string(rc));
  }
}

}  // namespace

Result<std::shared_ptr<const YaraRules>> YaraRules::Compile(const std::vector<YaraSource>& sources) {
  MAMORI_RETURN_IF_ERROR(EnsureYaraInitialized());
  YR_COMPILER* compiler = nullptr;
  if (yr_compiler_create(&compiler) != ERROR_SUCCESS) return ResourceExhaustedError("yr_compiler_create failed");
  CompileDiagnostics diag;
  yr_compiler_set_callback(compiler, OnCompilerMessage, &diag);
  for (const YaraSource& src : sources) {
    // Through a FILE* so that libyara records `path` in its messages;
    // fmemopen keeps sources that never touched disk (bundles) on one path.
    FILE* f = ::fmemopen(const_cast<char*>(src.text.data()), src.text.size(), "r");
    if (f == nullptr) {
      yr_compiler_destroy(compiler);
      return ResourceExhaustedError("fmemopen failed for " + src.path);
    }
    const char* ns = src.name_space.empty() ? nullptr : src.name_space.c_str();
    yr_compiler_add_file(compiler, f, ns, src.path.c_str());
    std::fclose(f);
    // After an error libyara refuses further sources; report what we have.
    if (!diag.errors.empty()) break;
  }
  if (!diag.errors.empty()) {
    yr_compiler_destroy(compiler);
    std::string msg;
    for (const auto& e : diag.errors) {
      if (!msg.empty()) msg += "\n";
      msg += e;
    }
    return InvalidArgumentError(msg);
  }
  YR_RULES* rules = nullptr;
  int rc = yr_compiler_get_rules(compiler, &rules);
  yr_compiler_destroy(compiler);
  if (rc != ERROR_SUCCESS) return ResourceExhaustedError("yr_compiler_get_rules failed with code " + std::to_string(rc));
  std::shared_ptr<YaraRules> out(new YaraRules());
  out->rules_ = rules;
  out->warnings_ = std::move(diag.warnings);
  const YR_RULE* rule = nullptr;
  yr_rules_foreach(rules, rule) { ++out->rule_count_; }
  return std::shared_ptr<const YaraRules>(std::move(out));
}

Result<std::shared_ptr<const YaraRules>> YaraRules::CompileFiles(const std::vector<std::string>& paths) {
  std::vector<YaraSource> sources;
  for (const std::string& path : paths) {
    auto text = ReadFileToString(path);
    if (!text.ok()) return text.status();
    std::string stem = path.substr(path.rfind('/') + 1);
    stem = stem.substr(0, stem.find('.'));
    sources.push_back(YaraSource{path, std::move(*text), stem});
  }
  return Compile(sources);
}

std::vector<std::string> YaraRules::RuleNames() const {
  std::vector<std::string> names;
  const YR_RULE* rule = nullptr;
  yr_rules_foreach(static_cast<YR_RULES*>(rules_), rule) {
    std::string ns = rule->ns != nullptr && rule->ns->name != nullptr ? rule->ns->name : "default";
    names.push_back(ns + ":" + rule->identifier);
  }
  return names;
}

YaraRules::~YaraRules() {
  if (rules_ != nullptr) yr_rules_destroy(static_cast<YR_RULES*>(rules_));
}

Result<std::unique_ptr<YaraScanner>> YaraScanner::Create(std::shared_ptr<const YaraRules> rules) {
  if (rules == nullptr) return InvalidArgumentError("YaraScanner needs a rule set");
  YR_SCANNER* scanner = nullptr;
  int rc = yr_scanner_create(static_cast<YR_RULES*>(rules->rules_), &scanner);
  if (rc != ERROR_SUCCESS) return ResourceExhaustedError("yr_scanner_create failed with code " + std::to_string(rc));
  std::unique_ptr<YaraScanner> out(new YaraScanner());
  out->rules_ = std::move(rules);
  out->scanner_ = scanner;
  // Without this flag libyara calls back once per rule that did not match too:
  // thousands of calls per file for nothing.
  yr_scanner_set_flags(scanner, SCAN_FLAGS_REPORT_RULES_MATCHING);
  return out;
}

YaraScanner::~YaraScanner() {
  if (scanner_ != nullptr) yr_scanner_destroy(static_cast<YR_SCANNER*>(scanner_));
}

Status YaraScanner::ScanBuffer(std::string_view data, std::chrono::milliseconds timeout,
                               std::vector<YaraMatch>* out) {
  auto* scanner = static_cast<YR_SCANNER*>(scanner_);
  ScanCallbackState state{out};
  yr_scanner_set_callback(scanner, OnScanMessage, &state);
  yr_scanner_set_timeout(scanner, TimeoutSeconds(timeout));
  return ScanResultToStatus(
      yr_scanner_scan_mem(scanner, reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

Status YaraScanner::ScanFd(int fd, std::chrono::milliseconds timeout, std::vector<YaraMatch>* out) {
  auto* scanner = static_cast<YR_SCANNER*>(scanner_);
  ScanCallbackState state{out};
  yr_scanner_set_callback(scanner, OnScanMessage, &state);
  yr_scanner_set_timeout(scanner, TimeoutSeconds(timeout));
  return ScanResultToStatus(yr_scanner_scan_fd(scanner, fd));
}

}  // namespace mamori::scanner
