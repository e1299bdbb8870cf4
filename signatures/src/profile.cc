#include "mamori/signatures/profile.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "mamori/common/file_util.h"
#include "mamori/scanner/yara_engine.h"

namespace mamori::signatures {
namespace {

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdent(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// A small lexer: just enough of YARA's grammar to find rule boundaries.
class Splitter {
 public:
  Splitter(std::string_view text, const std::string& file) : s_(text), file_(file) {}

  Status Run(std::vector<std::string>* imports, std::vector<RuleSource>* rules) {
    while (SkipSpaceAndComments(), pos_ < s_.size()) {
      size_t start = pos_;
      int start_line = line_;
      if (!IsIdentStart(s_[pos_])) return Error("unexpected character '" + std::string(1, s_[pos_]) + "'");
      std::string word = Ident();
      if (word == "import" || word == "include") {
        SkipSpaceAndComments();
        if (pos_ >= s_.size() || s_[pos_] != '"') return Error("expected a quoted name after " + word);
        SkipString();
        if (word == "include") return Error("include is not supported by the profiler; concatenate the files");
        imports->emplace_back(s_.substr(start, pos_ - start));
        continue;
      }
      RuleSource r;
      while (word == "private" || word == "global") {
        r.global = r.global || word == "global";
        SkipSpaceAndComments();
        word = Ident();
      }
      if (word != "rule") return Error("expected 'rule', found '" + word + "'");
      SkipSpaceAndComments();
      r.name = Ident();
      if (r.name.empty()) return Error("rule without a name");
      r.line = start_line;
      while (pos_ < s_.size() && s_[pos_] != '{') {
        if (s_[pos_] == '\n') ++line_;
        ++pos_;
      }
      MAMORI_RETURN_IF_ERROR(SkipBody());
      r.text = std::string(s_.substr(start, pos_ - start));
      rules->push_back(std::move(r));
    }
    return Status::Ok();
  }

 private:
  Status Error(const std::string& what) const {
    return InvalidArgumentError(file_ + ":" + std::to_string(line_) + ": " + what);
  }

  std::string Ident() {
    size_t start = pos_;
    while (pos_ < s_.size() && IsIdent(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  void SkipSpaceAndComments() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (s_.compare(pos_, 2, "//") == 0) {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (s_.compare(pos_, 2, "/*") == 0) {
        size_t end = s_.find("*/", pos_ + 2);
        size_t stop = end == std::string_view::npos ? s_.size() : end + 2;
        line_ += static_cast<int>(std::count(s_.begin() + static_cast<long>(pos_), s_.begin() + static_cast<long>(stop), '\n'));
        pos_ = stop;
      } else {
        break;
      }
    }
  }

  void SkipString() {  // at the opening quote
    ++pos_;
    while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\n') pos_ += s_[pos_] == '\\' ? 2 : 1;
    if (pos_ < s_.size()) ++pos_;
  }

  void SkipRegex() {  // at the opening slash
    ++pos_;
    bool in_class = false;
    while (pos_ < s_.size() && s_[pos_] != '\n') {
      char c = s_[pos_];
      if (c == '\\') {
        pos_ += 2;
        continue;
      }
      if (c == '[') in_class = true;
      else if (c == ']') in_class = false;
      else if (c == '/' && !in_class) break;
      ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '/') ++pos_;
  }

  // At '{': skips to just past the matching '}'.
  Status SkipBody() {
    if (pos_ >= s_.size()) return Error("rule without a body");
    int depth = 0;
    std::string last_word;
    char last_sig = 0;  // last significant character
    while (pos_ < s_.size()) {
      SkipSpaceAndComments();
      if (pos_ >= s_.size()) break;
      char c = s_[pos_];
      if (c == '"') {
        SkipString();
        last_sig = '"';
        continue;
      }
      // A slash starts a regular expression after '=' or "matches"; elsewhere it divides.
      if (c == '/' && (last_sig == '=' || last_word == "matches")) {
        SkipRegex();
        last_sig = '/';
        last_word.clear();
        continue;
      }
      if (IsIdentStart(c)) {
        last_word = Ident();
        last_sig = 'a';
        continue;
      }
      if (c == '{') ++depth;
      if (c == '}' && --depth == 0) {
        ++pos_;
        return Status::Ok();
      }
      last_sig = c;
      last_word.clear();
      ++pos_;
    }
    return Error("unterminated rule body");
  }

  std::string_view s_;
  const std::string& file_;
  size_t pos_ = 0;
  int line_ = 1;
};

// Names of other rules that `text` mentions as identifiers.
std::set<std::string> ReferencedRules(const std::string& text, const std::map<std::string, size_t>& index,
                                      const std::string& self) {
  std::set<std::string> out;
  for (size_t i = 0; i < text.size();) {
    if (IsIdentStart(text[i]) && (i == 0 || !(IsIdent(text[i - 1]) || text[i - 1] == '$' || text[i - 1] == '.'))) {
      size_t j = i;
      while (j < text.size() && IsIdent(text[j])) ++j;
      std::string w = text.substr(i, j - i);
      if (w != self && index.count(w) != 0) out.insert(w);
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

// Seconds to scan the corpus with `rules`, stopping at `budget` (then
// *capped is set): one pathological rule must not hold the profile for hours.
double TimeScan(const std::shared_ptr<const scanner::YaraRules>& rules, const std::vector<std::string>& corpus,
                std::chrono::milliseconds budget, bool* capped) {
  auto sc = scanner::YaraScanner::Create(rules);
  if (!sc.ok()) return 0;
  std::vector<scanner::YaraMatch> matches;
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::steady_clock::now() - start; };
  for (const auto& data : corpus) {
    auto left = budget - std::chrono::duration_cast<std::chrono::milliseconds>(elapsed());
    if (left.count() <= 0) {
      *capped = true;
      break;
    }
    matches.clear();
    if ((*sc)->ScanBuffer(data, left, &matches).code() == StatusCode::kDeadlineExceeded) {
      *capped = true;
      break;
    }
  }
  return std::chrono::duration<double>(elapsed()).count();
}

}  // namespace

Status SplitYaraRules(std::string_view text, const std::string& file, std::vector<std::string>* imports,
                      std::vector<RuleSource>* rules) {
  return Splitter(text, file).Run(imports, rules);
}

Result<ProfileReport> ProfileRules(const std::vector<std::string>& rule_files, const std::string& corpus_dir,
                                   uint64_t max_corpus_bytes, std::chrono::milliseconds per_rule_budget) {
  ProfileReport report;
  std::vector<std::string> corpus;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(corpus_dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator() && report.corpus_bytes < max_corpus_bytes;
       it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    auto data = ReadFileToString(it->path().string());
    if (!data.ok()) continue;  // unreadable sample: the profile is about rules, not the corpus
    if (report.corpus_bytes + data->size() > max_corpus_bytes) data->resize(max_corpus_bytes - report.corpus_bytes);
    report.corpus_bytes += data->size();
    corpus.push_back(std::move(*data));
  }
  if (ec) return InvalidArgumentError("corpus " + corpus_dir + ": " + ec.message());
  if (corpus.empty()) return InvalidArgumentError("corpus " + corpus_dir + ": no readable files");
  report.corpus_files = corpus.size();

  // The whole set first: it must compile, and it gives the reference time.
  auto all = scanner::YaraRules::CompileFiles(rule_files);
  if (!all.ok()) return all.status();
  bool all_capped = false;
  report.all_rules_seconds = TimeScan(*all, corpus, std::chrono::hours(1), &all_capped);

  // The cost of one pass over the corpus with one plain string, which every
  // rule measured alone pays (the string search is shared when rules are
  // compiled together): what a rule costs beyond it is what it adds to a set.
  auto trivial = scanner::YaraRules::Compile(
      {{"baseline", "rule _baseline { strings: $a = \"mamori-profile-baseline-7f3c\" condition: $a }", "profile"}});
  if (!trivial.ok()) return trivial.status();
  bool baseline_capped = false;
  report.baseline_seconds = TimeScan(*trivial, corpus, std::chrono::hours(1), &baseline_capped);

  for (const std::string& file : rule_files) {
    auto text = ReadFileToString(file);
    if (!text.ok()) return text.status();
    std::vector<std::string> imports;
    std::vector<RuleSource> rules;
    MAMORI_RETURN_IF_ERROR(SplitYaraRules(*text, file, &imports, &rules));
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < rules.size(); ++i) index[rules[i].name] = i;
    std::string prelude;
    for (const auto& imp : imports) prelude += imp + "\n";
    for (const auto& r : rules) {
      if (r.global) prelude += r.text + "\n";  // global rules gate every other rule
    }
    for (const auto& r : rules) {
      if (r.global) continue;
      // The rule plus, transitively, the rules it references (in file order).
      std::set<size_t> needed;
      std::vector<std::string> todo{r.name};
      while (!todo.empty()) {
        std::string n = todo.back();
        todo.pop_back();
        size_t i = index[n];
        if (!needed.insert(i).second) continue;
        for (const auto& dep : ReferencedRules(rules[i].text, index, n)) todo.push_back(dep);
      }
      std::string source = prelude;
      for (size_t i : needed) source += rules[i].text + "\n";
      RuleCost cost;
      cost.rule = r.name;
      cost.where = file + ":" + std::to_string(r.line);
      auto compiled = scanner::YaraRules::Compile({{file, source, "profile"}});
      if (!compiled.ok()) {
        cost.error = compiled.status().message();
      } else {
        cost.seconds = TimeScan(*compiled, corpus, per_rule_budget, &cost.capped);
        cost.extra = std::max(0.0, cost.seconds - report.baseline_seconds);
        report.sum_seconds += cost.seconds;
        report.sum_extra += cost.extra;
      }
      report.rules.push_back(std::move(cost));
    }
  }
  std::stable_sort(report.rules.begin(), report.rules.end(), [](const RuleCost& a, const RuleCost& b) {
    if (a.error.empty() != b.error.empty()) return a.error.empty();
    return a.extra > b.extra;
  });
  return report;
}

}  // namespace mamori::signatures
