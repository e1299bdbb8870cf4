#include "loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <optional>

namespace mamori::behavior::rules::internal {
namespace {

// A per-document problem: refused (or skipped) with this reason at this line.
struct Problem {
  bool skip = false;
  int line = 0;  // 1-based; 0 = the document's line
  std::string reason;
};

YAML::Node Get(const YAML::Node& map, const char* key) {
  const YAML::Node& const_map = map;
  return const_map[key];
}

int LineOf(const YAML::Node& n) { return n.Mark().line >= 0 ? n.Mark().line + 1 : 0; }

bool ScalarField(const YAML::Node& doc, const char* key, std::string* out, Problem* p) {
  YAML::Node n = Get(doc, key);
  if (!n || n.IsNull()) return true;
  if (!n.IsScalar()) {
    *p = {false, LineOf(n), std::string("'") + key + "' must be a string"};
    return false;
  }
  *out = n.Scalar();
  return true;
}

// A string or a list of strings.
bool StringList(const YAML::Node& n, const char* what, std::vector<std::string>* out, Problem* p) {
  if (!n || n.IsNull()) return true;
  if (n.IsScalar()) {
    out->push_back(n.Scalar());
    return true;
  }
  if (n.IsSequence()) {
    for (const YAML::Node& item : n) {
      if (!item.IsScalar()) {
        *p = {false, LineOf(item), std::string("'") + what + "' must list strings"};
        return false;
      }
      out->push_back(item.Scalar());
    }
    return true;
  }
  *p = {false, LineOf(n), std::string("'") + what + "' must be a string or a list of strings"};
  return false;
}

bool ParseBool(const YAML::Node& n, const char* what, bool* out, Problem* p) {
  std::string v = n.IsScalar() ? FoldAscii(n.Scalar()) : "";
  if (v == "true" || v == "yes") {
    *out = true;
  } else if (v == "false" || v == "no") {
    *out = false;
  } else {
    *p = {false, LineOf(n), std::string("'") + what + "' must be true or false"};
    return false;
  }
  return true;
}

constexpr std::pair<std::string_view, ResponseKind> kResponses[] = {
    {"kill_process", ResponseKind::kKillProcess},
    {"kill_tree", ResponseKind::kKillTree},
    {"quarantine_image", ResponseKind::kQuarantineImage},
    {"quarantine_target", ResponseKind::kQuarantineTarget},
    {"isolate", ResponseKind::kIsolate},
};

// Common metadata of rules and correlations, and the `mamori:` block.
bool ParseInfo(const YAML::Node& doc, RuleInfo* info, Problem* p) {
  if (!ScalarField(doc, "title", &info->title, p) || !ScalarField(doc, "id", &info->id, p) ||
      !ScalarField(doc, "name", &info->name, p) || !ScalarField(doc, "status", &info->status, p) ||
      !ScalarField(doc, "description", &info->description, p) || !ScalarField(doc, "level", &info->level, p)) {
    return false;
  }
  std::vector<std::string> tags;
  if (!StringList(Get(doc, "tags"), "tags", &tags, p)) return false;
  for (std::string& t : tags) {
    if (t.rfind("attack.", 0) == 0) info->tags.push_back(std::move(t));
  }
  if (info->title.empty()) {
    *p = {false, 0, "rule has no 'title'"};
    return false;
  }
  if (!info->level.empty() && info->level != "informational" && info->level != "low" && info->level != "medium" &&
      info->level != "high" && info->level != "critical") {
    *p = {false, LineOf(Get(doc, "level")), "unknown level '" + info->level + "'"};
    return false;
  }
  YAML::Node mamori = Get(doc, "mamori");
  if (!mamori || mamori.IsNull()) return true;
  if (!mamori.IsMap()) {
    *p = {false, LineOf(mamori), "'mamori' must be a mapping"};
    return false;
  }
  for (const auto& kv : mamori) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (key != "responses") {
      *p = {false, LineOf(kv.first), "unknown key '" + key + "' in the mamori block (known: responses)"};
      return false;
    }
    std::vector<std::string> names;
    if (!StringList(kv.second, "mamori.responses", &names, p)) return false;
    for (const std::string& name : names) {
      const auto* found =
          std::find_if(std::begin(kResponses), std::end(kResponses), [&](const auto& r) { return r.first == name; });
      if (found == std::end(kResponses)) {
        *p = {false, LineOf(kv.second),
              "unknown response '" + name +
                  "' (known: kill_process, kill_tree, quarantine_image, quarantine_target, isolate)"};
        return false;
      }
      if (std::find(info->responses.begin(), info->responses.end(), found->second) == info->responses.end()) {
        info->responses.push_back(found->second);
      }
    }
  }
  return true;
}

bool ParseLogsource(const YAML::Node& doc, Category* category, Problem* p) {
  YAML::Node ls = Get(doc, "logsource");
  if (!ls || !ls.IsMap()) {
    *p = {false, ls ? LineOf(ls) : 0, "rule has no 'logsource' mapping"};
    return false;
  }
  std::string product, cat, service;
  if (!ScalarField(ls, "product", &product, p) || !ScalarField(ls, "category", &cat, p) ||
      !ScalarField(ls, "service", &service, p)) {
    return false;
  }
  const int line = LineOf(ls);
  if (!product.empty() && product != "linux") {
    *p = {true, line, "unsupported logsource (product: " + product + ")"};
    return false;
  }
  if (!service.empty()) {
    *p = {true, line, "unsupported logsource (service: " + service + ")"};
    return false;
  }
  if (cat.empty()) {
    *p = {true, line, "unsupported logsource (no category)"};
    return false;
  }
  auto c = CategoryFromName(cat);
  if (!c) {
    *p = {true, line, "unsupported logsource (category: " + cat + ")"};
    return false;
  }
  *category = *c;
  return true;
}

bool ParseInt(const YAML::Node& n, int64_t* out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && *out >= 0;
}

bool ParseTimespan(const YAML::Node& n, uint64_t* ns, Problem* p) {
  std::string s = n && n.IsScalar() ? n.Scalar() : "";
  uint64_t unit = 0;
  if (!s.empty()) {
    switch (s.back()) {
      case 's':
        unit = 1'000'000'000ull;
        break;
      case 'm':
        unit = 60'000'000'000ull;
        break;
      case 'h':
        unit = 3'600'000'000'000ull;
        break;
      case 'd':
        unit = 86'400'000'000'000ull;
        break;
      default:
        break;
    }
  }
  uint64_t count = 0;
  if (unit != 0) {
    auto r = std::from_chars(s.data(), s.data() + s.size() - 1, count);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size() - 1) unit = 0;
  }
  if (unit == 0 || count == 0 || count > 3650 * 86'400ull) {
    *p = {false, n ? LineOf(n) : 0, "timespan '" + s + "' must be a number followed by s, m, h or d (e.g. 10m)"};
    return false;
  }
  *ns = count * unit;
  return true;
}

bool ParseCorrelation(const YAML::Node& doc, ParsedCorrelation* c, Problem* p) {
  YAML::Node corr = Get(doc, "correlation");
  if (!corr.IsMap()) {
    *p = {false, LineOf(corr), "'correlation' must be a mapping"};
    return false;
  }
  if (YAML::Node g = Get(doc, "generate"); g && !ParseBool(g, "generate", &c->generate, p)) return false;
  std::optional<YAML::Node> condition;  // (YAML::Node assignment would rebind shared nodes)
  bool have_timespan = false;
  for (const auto& kv : corr) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    const YAML::Node& v = kv.second;
    if (key == "type") {
      std::string t = v.IsScalar() ? v.Scalar() : "";
      if (t == "event_count") {
        c->type = CorrelationDef::Type::kEventCount;
      } else if (t == "value_count") {
        c->type = CorrelationDef::Type::kValueCount;
      } else if (t == "temporal") {
        c->type = CorrelationDef::Type::kTemporal;
      } else if (t == "temporal_ordered") {
        c->type = CorrelationDef::Type::kTemporalOrdered;
      } else {
        *p = {false, LineOf(v), "unknown correlation type '" + t + "'"};
        return false;
      }
    } else if (key == "rules") {
      if (!StringList(v, "rules", &c->rule_refs, p)) return false;
    } else if (key == "group-by") {
      if (!StringList(v, "group-by", &c->group_by, p)) return false;
    } else if (key == "timespan") {
      if (!ParseTimespan(v, &c->timespan_ns, p)) return false;
      have_timespan = true;
    } else if (key == "condition") {
      condition.emplace(v);
    } else if (key == "generate") {
      if (!ParseBool(v, "generate", &c->generate, p)) return false;
    } else if (key == "aliases") {
      if (!v.IsMap()) {
        *p = {false, LineOf(v), "'aliases' must map alias names to {rule name: field}"};
        return false;
      }
      for (const auto& a : v) {
        if (!a.first.IsScalar() || !a.second.IsMap()) {
          *p = {false, LineOf(a.first), "'aliases' must map alias names to {rule name: field}"};
          return false;
        }
        auto& per_rule = c->aliases[a.first.Scalar()];
        for (const auto& r : a.second) {
          if (!r.first.IsScalar() || !r.second.IsScalar()) {
            *p = {false, LineOf(r.first), "alias entries must be 'rule name: field'"};
            return false;
          }
          per_rule[r.first.Scalar()] = r.second.Scalar();
        }
      }
    } else {
      *p = {false, LineOf(kv.first), "unknown key '" + key + "' in correlation"};
      return false;
    }
  }
  if (!Get(corr, "type")) {
    *p = {false, LineOf(corr), "correlation has no 'type'"};
    return false;
  }
  if (c->rule_refs.empty()) {
    *p = {false, LineOf(corr), "correlation has no 'rules'"};
    return false;
  }
  if (!have_timespan) {
    *p = {false, LineOf(corr), "correlation has no 'timespan'"};
    return false;
  }
  const bool counting = c->type == CorrelationDef::Type::kEventCount || c->type == CorrelationDef::Type::kValueCount;
  const int64_t n_rules = static_cast<int64_t>(c->rule_refs.size());
  if (!condition) {
    if (counting) {
      *p = {false, LineOf(corr), "event_count and value_count correlations need a 'condition'"};
      return false;
    }
    c->min_count = n_rules;  // temporal: every referenced rule
    return true;
  }
  if (!condition->IsMap()) {
    *p = {false, LineOf(*condition), "correlation 'condition' must be a mapping such as {gte: 10}"};
    return false;
  }
  int64_t lo = 0, hi = INT64_MAX;
  bool any_bound = false;
  for (const auto& kv : *condition) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (key == "field") {
      if (c->type != CorrelationDef::Type::kValueCount || !kv.second.IsScalar()) {
        *p = {false, LineOf(kv.first), "condition 'field' belongs to value_count correlations only"};
        return false;
      }
      c->value_field = kv.second.Scalar();
      continue;
    }
    int64_t v = 0;
    if (!ParseInt(kv.second, &v)) {
      *p = {false, LineOf(kv.second), "condition '" + key + "' needs a non-negative integer"};
      return false;
    }
    any_bound = true;
    if (key == "gt") {
      lo = std::max(lo, v + 1);
    } else if (key == "gte") {
      lo = std::max(lo, v);
    } else if (key == "lt") {
      hi = std::min(hi, v - 1);
      c->has_upper = true;
    } else if (key == "lte") {
      hi = std::min(hi, v);
      c->has_upper = true;
    } else if (key == "eq") {
      lo = std::max(lo, v);
      hi = std::min(hi, v);
      c->has_upper = true;
    } else {
      *p = {false, LineOf(kv.first), "unknown condition '" + key + "' (known: gt, gte, lt, lte, eq, field)"};
      return false;
    }
  }
  if (!any_bound) {
    *p = {false, LineOf(*condition), "correlation condition has no gt/gte/lt/lte/eq"};
    return false;
  }
  if (c->type == CorrelationDef::Type::kValueCount && c->value_field.empty()) {
    *p = {false, LineOf(*condition), "value_count correlations need 'field' in the condition"};
    return false;
  }
  lo = std::max<int64_t>(lo, 1);  // a group exists once it has an event
  if (lo > hi) {
    *p = {false, LineOf(*condition), "correlation condition can never hold"};
    return false;
  }
  if (!counting) {
    // The distinct rules seen only grow within a window: an upper bound has
    // no streaming meaning, except eq/lte equal to "all of them".
    if (c->has_upper && hi < n_rules) {
      *p = {false, LineOf(*condition), "temporal correlations support only gt/gte conditions"};
      return false;
    }
    if (lo > n_rules) {
      *p = {false, LineOf(*condition), "condition asks for more rules than the correlation lists"};
      return false;
    }
    if (c->type == CorrelationDef::Type::kTemporalOrdered && lo != n_rules) {
      *p = {false, LineOf(*condition),
            "temporal_ordered needs every listed rule in order; a partial count is not supported"};
      return false;
    }
    c->has_upper = false;
    hi = INT64_MAX;
  }
  c->min_count = lo;
  c->max_count = hi;
  return true;
}

// One document. Returns false with *p set when it does not load.
// `first_line`: 0-based line of the document's text in the file.
bool ParseDocument(const YAML::Node& doc, const std::string& file, int first_line, ParsedFile* out, RuleInfo* info,
                   Problem* p) {
  info->file = file;
  info->line = first_line + LineOf(doc);
  if (!doc.IsMap()) {
    *p = {false, 0, "a rule document must be a mapping"};
    return false;
  }
  if (!ParseInfo(doc, info, p)) return false;
  if (Get(doc, "correlation")) {
    ParsedCorrelation c;
    if (!ParseCorrelation(doc, &c, p)) return false;
    info->correlation = true;
    c.info = std::make_shared<RuleInfo>(*info);
    out->correlations.push_back(std::move(c));
    return true;
  }
  if (Get(doc, "filter") && !Get(doc, "detection")) {
    *p = {false, 0, "Sigma filter documents are not supported"};
    return false;
  }
  ParsedRule r;
  if (!ParseLogsource(doc, &r.category, p)) return false;
  info->category = std::string(CategoryName(r.category));
  YAML::Node detection = Get(doc, "detection");
  if (!detection) {
    *p = {false, 0, "rule has no 'detection'"};
    return false;
  }
  DetectionError err;
  if (!CompileDetection(detection, r.category, &r.detection, &err)) {
    *p = {false, err.mark.line >= 0 ? err.mark.line + 1 : 0, err.message};
    return false;
  }
  r.info = std::make_shared<RuleInfo>(*info);
  out->rules.push_back(std::move(r));
  return true;
}

struct DocumentText {
  std::string text;
  int first_line = 0;  // 0-based line of `text` in the file
};

bool IsMarker(std::string_view line, std::string_view marker) {
  return line.starts_with(marker) &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r' || line[3] == '\n');
}

// Only blank lines, comments and directives (%YAML...): what may precede a
// document's "---" and belongs with it.
bool IsPreamble(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, (nl == std::string_view::npos ? text.size() : nl) - pos);
    size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#' && line[0] != '%') return false;
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  return true;
}

// Splits a YAML stream into its documents: YAML forbids "---" and "..." at
// the start of a line inside content, so such lines delimit documents.
// Documents are then loaded one by one with YAML::Load rather than
// YAML::LoadAll, which in yaml-cpp 0.7 loops forever, allocating, on some
// malformed input such as "!," (upstream issue #1040, fixed after 0.7). A
// syntax error also costs only its own document.
std::vector<DocumentText> SplitDocuments(std::string_view text) {
  std::vector<DocumentText> docs(1);
  int line_no = 0;
  for (size_t pos = 0; pos < text.size(); ++line_no) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    std::string_view line = text.substr(pos, end - pos);
    pos = end;
    if (IsMarker(line, "---") && !IsPreamble(docs.back().text)) {
      docs.push_back({std::string(line), line_no});  // the marker starts the next document
      continue;
    }
    docs.back().text.append(line);
    if (IsMarker(line, "...")) docs.push_back({"", line_no + 1});
  }
  return docs;
}

// The title of a document that is not valid YAML, for the report.
std::string TitleOf(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, (nl == std::string_view::npos ? text.size() : nl) - pos);
    if (line.starts_with("title:")) {
      line.remove_prefix(6);
      while (!line.empty() && (line.front() == ' ' || line.front() == '\'' || line.front() == '"'))
        line.remove_prefix(1);
      while (!line.empty() &&
             (line.back() == ' ' || line.back() == '\r' || line.back() == '\'' || line.back() == '"')) {
        line.remove_suffix(1);
      }
      if (!line.empty()) return std::string(line);
    }
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  return "(untitled document)";
}

}  // namespace

std::string RuleLabel(const RuleInfo& info) {
  if (info.title.empty()) return info.id.empty() ? "(untitled)" : "(" + info.id + ")";
  return info.id.empty() ? info.title : info.title + " (" + info.id + ")";
}

void AddRefused(LoadReport* report, const std::string& file, int line, std::string rule, std::string reason) {
  if (!report) return;
  report->refused_items.push_back({file, line, std::move(rule), std::move(reason)});
  ++report->refused;
}

void AddSkipped(LoadReport* report, const std::string& file, int line, std::string rule, std::string reason) {
  if (!report) return;
  report->skipped_items.push_back({file, line, std::move(rule), std::move(reason)});
  ++report->skipped;
}

void ParseRuleFile(std::string_view text, const std::string& file, ParsedFile* out, LoadReport* report) {
  for (const DocumentText& d : SplitDocuments(text)) {
    std::optional<YAML::Node> loaded;
    try {
      loaded.emplace(YAML::Load(d.text));
    } catch (const YAML::Exception& e) {
      const int line = d.first_line + (e.mark.line >= 0 ? e.mark.line + 1 : 1);
      AddRefused(report, file, line, TitleOf(d.text), "YAML error: " + e.msg);
      continue;
    }
    const YAML::Node& doc = *loaded;
    if (!doc || doc.IsNull()) continue;  // empty document (e.g. a trailing ---)
    RuleInfo info;
    Problem p;
    bool ok = false;
    try {
      ok = ParseDocument(doc, file, d.first_line, out, &info, &p);
    } catch (const YAML::Exception& e) {
      p = {false, e.mark.line >= 0 ? e.mark.line + 1 : 0, "YAML error: " + e.msg};
    }
    if (ok) continue;
    const int line = p.line > 0 ? d.first_line + p.line : info.line;
    DroppedRule dropped{info.id, info.name, (p.skip ? "skipped: " : "refused: ") + p.reason};
    if (p.skip) {
      AddSkipped(report, file, line, RuleLabel(info), p.reason);
    } else {
      AddRefused(report, file, line, RuleLabel(info), p.reason);
    }
    out->dropped.push_back(std::move(dropped));
  }
}

}  // namespace mamori::behavior::rules::internal
