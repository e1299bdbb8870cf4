// YARA pattern matching through libyara.
//
// YaraRules is compiled once and immutable afterwards: share it read-only as
// std::shared_ptr<const YaraRules> across worker threads; each worker owns one
// YaraScanner (YARA's own model: one YR_RULES, one YR_SCANNER per thread).
// A rule set with any compile error is refused whole: nothing half-loaded.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::scanner {

struct YaraSource {
  std::string path;       // shown in errors as "path:line: message"
  std::string text;       // rule source
  std::string name_space; // YARA namespace; empty = "default"
};

struct YaraMatch {
  std::string rule;
  std::string name_space;
  std::vector<std::string> tags;
  std::vector<std::pair<std::string, std::string>> meta;  // values rendered as text
};

// Compiler warnings (e.g. "string may slow down scanning"), one per line.
struct YaraWarning {
  std::string path;
  int line = 0;
  std::string rule;  // the rule concerned, when libyara names one
  std::string message;
};

class YaraRules {
 public:
  // Compiles all sources into one rule set. Errors: INVALID_ARGUMENT with every
  // error as "path:line: message", one per line of the status message.
  static Result<std::shared_ptr<const YaraRules>> Compile(const std::vector<YaraSource>& sources);
  // Reads and compiles files (namespace = file stem).
  static Result<std::shared_ptr<const YaraRules>> CompileFiles(const std::vector<std::string>& paths);

  ~YaraRules();
  YaraRules(const YaraRules&) = delete;
  YaraRules& operator=(const YaraRules&) = delete;

  size_t rule_count() const { return rule_count_; }
  // "namespace:rule" for every rule, in compile order.
  std::vector<std::string> RuleNames() const;
  const std::vector<YaraWarning>& warnings() const { return warnings_; }

 private:
  friend class YaraScanner;
  YaraRules() = default;
  void* rules_ = nullptr;  // YR_RULES*, owned
  size_t rule_count_ = 0;
  std::vector<YaraWarning> warnings_;
};

// Per-thread scan context over a shared rule set. Not thread-safe; keeps
// `rules` alive for its own lifetime.
class YaraScanner {
 public:
  static Result<std::unique_ptr<YaraScanner>> Create(std::shared_ptr<const YaraRules> rules);
  ~YaraScanner();
  YaraScanner(const YaraScanner&) = delete;
  YaraScanner& operator=(const YaraScanner&) = delete;

  // Scans `data`; appends matches to `out`. `timeout` is rounded up to whole
  // seconds (libyara's granularity). DEADLINE_EXCEEDED when the timeout hit
  // (matches found so far are kept).
  Status ScanBuffer(std::string_view data, std::chrono::milliseconds timeout, std::vector<YaraMatch>* out);
  // Same over an open file descriptor (libyara maps the file).
  Status ScanFd(int fd, std::chrono::milliseconds timeout, std::vector<YaraMatch>* out);

  const std::shared_ptr<const YaraRules>& rules() const { return rules_; }

 private:
  YaraScanner() = default;
  std::shared_ptr<const YaraRules> rules_;
  void* scanner_ = nullptr;  // YR_SCANNER*, owned
};

}  // namespace mamori::scanner
