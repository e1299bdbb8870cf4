// RuleSet loading: files -> documents (loader.cc) -> linked correlations ->
// per-event-type buckets with their literal prefilter.
#include "mamori/behavior/rules/rule_set.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <tuple>

#include "compiled.h"
#include "loader.h"
#include "mamori/common/file_util.h"

namespace mamori::behavior::rules {
namespace {

namespace fs = std::filesystem;
using internal::Category;
using internal::CategoryMask;
using internal::Compiled;
using internal::CorrelationDef;
using internal::DroppedRule;
using internal::FieldId;
using internal::MaskOf;
using internal::ParsedCorrelation;
using internal::ParsedFile;

bool IsRuleFile(const fs::path& p) {
  std::string ext = p.extension().string();
  return ext == ".yml" || ext == ".yaml";
}

// Collects the rule files under `path` (sorted). Errors only when `path`
// itself cannot be read.
Status CollectFiles(const std::string& path, std::vector<std::string>* files) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return NotFoundError("behavior rules: " + path + ": no such file or directory");
  if (fs::is_regular_file(st)) {
    files->push_back(path);
    return Status::Ok();
  }
  if (!fs::is_directory(st)) return InvalidArgumentError("behavior rules: " + path + ": not a file or directory");
  std::vector<std::string> found;
  fs::recursive_directory_iterator it(path, ec), end;
  if (ec) return PermissionDeniedError("behavior rules: " + path + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return PermissionDeniedError("behavior rules: " + path + ": " + ec.message());
    const fs::path& p = it->path();
    if (p.filename().string().rfind('.', 0) == 0) {  // hidden: .git and the like
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && IsRuleFile(p)) found.push_back(p.string());
  }
  std::sort(found.begin(), found.end());
  files->insert(files->end(), found.begin(), found.end());
  return Status::Ok();
}

// Links correlations to their rules and builds the Compiled form.
class Linker {
 public:
  Linker(ParsedFile parsed, LoadReport* report) : p_(std::move(parsed)), report_(report) {}

  std::unique_ptr<Compiled> Run() {
    rule_alive_.assign(p_.rules.size(), true);
    corr_alive_.assign(p_.correlations.size(), true);
    refs_.resize(p_.correlations.size());
    RefuseDuplicateIds();
    ResolveReferences();
    PropagateRefusals();
    ResolveFields();
    return Assemble();
  }

 private:
  struct Target {
    bool is_correlation;
    uint32_t index;
  };

  void Refuse(const RuleInfo& info, std::string reason) {
    internal::AddRefused(report_, info.file, info.line, internal::RuleLabel(info), std::move(reason));
  }
  void RefuseRule(size_t i, std::string reason) {
    rule_alive_[i] = false;
    Refuse(*p_.rules[i].info, std::move(reason));
  }
  void RefuseCorrelation(size_t i, std::string reason) {
    if (!corr_alive_[i]) return;
    corr_alive_[i] = false;
    Refuse(*p_.correlations[i].info, std::move(reason));
  }

  void RefuseDuplicateIds() {
    std::map<std::string, const RuleInfo*> seen;
    auto check = [&](const RuleInfo& info) {
      if (info.id.empty()) return true;
      auto [it, fresh] = seen.emplace(info.id, &info);
      if (fresh) return true;
      reasons_ = "duplicate rule id (also " + it->second->file + ":" + std::to_string(it->second->line) + ")";
      return false;
    };
    for (size_t i = 0; i < p_.rules.size(); ++i) {
      if (!check(*p_.rules[i].info)) RefuseRule(i, reasons_);
    }
    for (size_t i = 0; i < p_.correlations.size(); ++i) {
      if (!check(*p_.correlations[i].info)) RefuseCorrelation(i, reasons_);
    }
  }

  // Finds what `ref`, written in a correlation of `file`, names. Returns an
  // empty optional and sets *why when it cannot.
  std::optional<Target> Resolve(const std::string& ref, const std::string& file, std::string* why) {
    std::vector<Target> same_file, anywhere;
    auto consider = [&](const RuleInfo& info, Target t) {
      if (info.name != ref) return;
      anywhere.push_back(t);
      if (info.file == file) same_file.push_back(t);
    };
    for (size_t i = 0; i < p_.rules.size(); ++i) {
      if (rule_alive_[i]) consider(*p_.rules[i].info, {false, static_cast<uint32_t>(i)});
    }
    for (size_t i = 0; i < p_.correlations.size(); ++i) {
      if (corr_alive_[i]) consider(*p_.correlations[i].info, {true, static_cast<uint32_t>(i)});
    }
    const auto& by_name = !same_file.empty() ? same_file : anywhere;
    if (by_name.size() == 1) return by_name[0];
    if (by_name.size() > 1) {
      *why = "rule name '" + ref + "' is ambiguous (several rules carry it)";
      return std::nullopt;
    }
    for (size_t i = 0; i < p_.rules.size(); ++i) {
      if (rule_alive_[i] && p_.rules[i].info->id == ref) return Target{false, static_cast<uint32_t>(i)};
    }
    for (size_t i = 0; i < p_.correlations.size(); ++i) {
      if (corr_alive_[i] && p_.correlations[i].info->id == ref) return Target{true, static_cast<uint32_t>(i)};
    }
    for (const DroppedRule& d : p_.dropped) {
      if (d.name == ref || d.id == ref) {
        *why = "referenced rule '" + ref + "' was not loaded (" + d.why + ")";
        return std::nullopt;
      }
    }
    *why = "references unknown rule '" + ref + "'";
    return std::nullopt;
  }

  void ResolveReferences() {
    for (size_t i = 0; i < p_.correlations.size(); ++i) {
      if (!corr_alive_[i]) continue;
      const ParsedCorrelation& c = p_.correlations[i];
      for (const std::string& ref : c.rule_refs) {
        std::string why;
        auto t = Resolve(ref, c.info->file, &why);
        if (!t) {
          RefuseCorrelation(i, why);
          break;
        }
        refs_[i].push_back(*t);
      }
    }
  }

  // Refuses correlations that name a refused correlation, until none is left.
  void RefuseStranded() {
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < p_.correlations.size(); ++i) {
        if (!corr_alive_[i]) continue;
        for (const Target& t : refs_[i]) {
          if (t.is_correlation && !corr_alive_[t.index]) {
            RefuseCorrelation(
                i, "referenced correlation '" + internal::RuleLabel(*p_.correlations[t.index].info) + "' was refused");
            changed = true;
            break;
          }
        }
      }
    }
  }

  // A correlation that names a refused correlation, or sits on a cycle, is refused too.
  void PropagateRefusals() {
    RefuseStranded();
    // Cycles: depth-first search over correlation -> correlation references.
    std::vector<int> color(p_.correlations.size(), 0);  // 0 new, 1 on stack, 2 done
    std::function<bool(size_t)> visit = [&](size_t i) {
      color[i] = 1;
      for (const Target& t : refs_[i]) {
        if (!t.is_correlation) continue;
        if (color[t.index] == 1 || (color[t.index] == 0 && !visit(t.index))) {
          RefuseCorrelation(i, "correlation rules refer to each other in a cycle");
          color[i] = 2;
          return false;
        }
      }
      color[i] = 2;
      return true;
    };
    for (size_t i = 0; i < p_.correlations.size(); ++i) {
      if (corr_alive_[i] && color[i] == 0) visit(i);
    }
    RefuseStranded();
  }

  CategoryMask LeafCategories(const Target& t) {
    if (!t.is_correlation) return MaskOf(p_.rules[t.index].category);
    CategoryMask m = 0;
    for (const Target& k : refs_[t.index]) m |= LeafCategories(k);
    return m;
  }

  // Resolves a group-by or value field for reference `k` of correlation `i`.
  bool FieldFor(size_t i, size_t k, const std::string& name, FieldId* out, std::string* why) {
    const ParsedCorrelation& c = p_.correlations[i];
    const Target& t = refs_[i][k];
    std::string field = name;
    if (auto alias = c.aliases.find(name); alias != c.aliases.end()) {
      const RuleInfo& target = t.is_correlation ? *p_.correlations[t.index].info : *p_.rules[t.index].info;
      const auto& per_rule = alias->second;
      auto it = per_rule.find(c.rule_refs[k]);
      if (it == per_rule.end() && !target.name.empty()) it = per_rule.find(target.name);
      if (it == per_rule.end() && !target.id.empty()) it = per_rule.find(target.id);
      if (it == per_rule.end()) {
        *why = "alias '" + name + "' gives no field for rule '" + c.rule_refs[k] + "'";
        return false;
      }
      field = it->second;
    }
    const CategoryMask cats = LeafCategories(t);
    auto f = internal::FieldFromName(field);
    for (int cat = 0; cat < internal::kCategoryCount; ++cat) {
      if (!(cats & (1u << cat))) continue;
      if (!f || !internal::FieldAvailable(*f, static_cast<Category>(cat))) {
        *why = "group-by/condition " + internal::FieldRefusal(field, static_cast<Category>(cat));
        return false;
      }
    }
    *out = *f;
    return true;
  }

  void ResolveFields() {
    fields_.resize(p_.correlations.size());
    for (size_t i = 0; i < p_.correlations.size(); ++i) {
      if (!corr_alive_[i]) continue;
      const ParsedCorrelation& c = p_.correlations[i];
      for (size_t k = 0; k < refs_[i].size() && corr_alive_[i]; ++k) {
        CorrelationDef::Ref ref;
        ref.is_correlation = refs_[i][k].is_correlation;
        std::string why;
        for (const std::string& g : c.group_by) {
          FieldId f;
          if (!FieldFor(i, k, g, &f, &why)) {
            RefuseCorrelation(i, why);
            break;
          }
          ref.group_by.push_back(f);
        }
        if (corr_alive_[i] && !c.value_field.empty()) {
          FieldId f;
          if (!FieldFor(i, k, c.value_field, &f, &why)) {
            RefuseCorrelation(i, why);
            break;
          }
          ref.value_field = f;
        }
        fields_[i].push_back(std::move(ref));
      }
    }
    RefuseStranded();  // refusing here can strand parents
  }

  std::unique_ptr<Compiled> Assemble() {
    // `generate`: a rule (or correlation) named by loaded correlations raises
    // alerts itself only if one of them says generate: true.
    std::vector<int> rule_refs(p_.rules.size(), 0), rule_gen(p_.rules.size(), 0);
    std::vector<int> corr_refs(p_.correlations.size(), 0), corr_gen(p_.correlations.size(), 0);
    for (size_t i = 0; i < p_.correlations.size(); ++i) {
      if (!corr_alive_[i]) continue;
      for (const Target& t : refs_[i]) {
        (t.is_correlation ? corr_refs : rule_refs)[t.index]++;
        (t.is_correlation ? corr_gen : rule_gen)[t.index] |= p_.correlations[i].generate;
      }
    }
    auto out = std::make_unique<Compiled>();
    std::vector<uint32_t> rule_new(p_.rules.size(), UINT32_MAX), corr_new(p_.correlations.size(), UINT32_MAX);
    for (size_t i = 0; i < p_.rules.size(); ++i) {
      if (!rule_alive_[i]) continue;
      p_.rules[i].info->standalone = rule_refs[i] == 0 || rule_gen[i];
      rule_new[i] = static_cast<uint32_t>(out->rules.size());
      out->rules.push_back({p_.rules[i].info, p_.rules[i].category, std::move(p_.rules[i].detection), {}});
      out->infos.push_back(p_.rules[i].info);
    }
    for (size_t i = 0; i < p_.correlations.size(); ++i) {
      if (!corr_alive_[i]) continue;
      ParsedCorrelation& c = p_.correlations[i];
      c.info->standalone = corr_refs[i] == 0 || corr_gen[i];
      corr_new[i] = static_cast<uint32_t>(out->correlations.size());
      CorrelationDef def;
      def.info = c.info;
      def.type = c.type;
      def.timespan_ns = c.timespan_ns;
      def.min_count = c.min_count;
      def.max_count = c.max_count;
      def.has_upper = c.has_upper;
      def.refs = std::move(fields_[i]);
      out->correlations.push_back(std::move(def));
      out->infos.push_back(c.info);
    }
    for (size_t i = 0; i < p_.correlations.size(); ++i) {
      if (!corr_alive_[i]) continue;
      CorrelationDef& def = out->correlations[corr_new[i]];
      for (size_t k = 0; k < refs_[i].size(); ++k) {
        const Target& t = refs_[i][k];
        const internal::CorrelationInput input{corr_new[i], static_cast<uint32_t>(k)};
        def.refs[k].index = t.is_correlation ? corr_new[t.index] : rule_new[t.index];
        auto& feeds =
            t.is_correlation ? out->correlations[def.refs[k].index].feeds : out->rules[def.refs[k].index].feeds;
        feeds.push_back(input);
      }
    }
    if (report_) report_->loaded += static_cast<int>(out->infos.size());
    BuildBuckets(out.get());
    return out;
  }

  static void BuildBuckets(Compiled* c) {
    for (int t = 0; t < kEventTypeCount; ++t) {
      internal::Bucket& b = c->buckets[t];
      const CategoryMask mask = internal::CategoriesOf(static_cast<EventType>(t));
      // Field, scan mode, folded literal, anchor -> rule positions. A literal
      // pinned to the start (end) of its field goes to a prefix (suffix)
      // index, which reads only as far as some literal still matches.
      using Key = std::tuple<int, int, std::string, int>;
      std::map<Key, std::vector<uint32_t>> atoms;
      for (uint32_t i = 0; i < c->rules.size(); ++i) {
        const internal::CompiledRule& r = c->rules[i];
        if (!(mask & MaskOf(r.category))) continue;
        const uint32_t pos = static_cast<uint32_t>(b.rules.size());
        b.rules.push_back(i);
        if (!r.detection.prefilter) {
          b.unfiltered.push_back(pos);
          continue;
        }
        for (const internal::Atom& a : *r.detection.prefilter) {
          const auto mode = a.anchor == internal::Atom::Anchor::kNone    ? internal::LiteralIndex::Mode::kAnywhere
                            : a.anchor == internal::Atom::Anchor::kStart ? internal::LiteralIndex::Mode::kPrefix
                                                                         : internal::LiteralIndex::Mode::kSuffix;
          auto& list = atoms[{static_cast<int>(a.field), static_cast<int>(mode), internal::FoldAscii(a.literal),
                              static_cast<int>(a.anchor)}];
          if (list.empty() || list.back() != pos) list.push_back(pos);
        }
      }
      // std::map orders by field and mode first: each scan's atoms are contiguous.
      for (auto& [key, positions] : atoms) {
        const auto field = static_cast<FieldId>(std::get<0>(key));
        const auto mode = static_cast<internal::LiteralIndex::Mode>(std::get<1>(key));
        if (b.scans.empty() || b.scans.back().field != field || b.scans.back().index.mode() != mode) {
          b.scans.push_back({field, internal::LiteralIndex(mode), static_cast<uint32_t>(b.atoms.size())});
        }
        const std::string& literal = std::get<2>(key);
        b.scans.back().index.Add(literal);
        uint32_t begin = static_cast<uint32_t>(b.atom_rules.size());
        b.atom_rules.insert(b.atom_rules.end(), positions.begin(), positions.end());
        b.atoms.push_back({static_cast<internal::Atom::Anchor>(std::get<3>(key)), static_cast<uint32_t>(literal.size()),
                           begin, static_cast<uint32_t>(b.atom_rules.size())});
      }
      for (auto& scan : b.scans) scan.index.Build();
    }
  }

  ParsedFile p_;
  LoadReport* report_;
  std::vector<bool> rule_alive_, corr_alive_;
  std::vector<std::vector<Target>> refs_;                 // per correlation, in `rules:` order
  std::vector<std::vector<CorrelationDef::Ref>> fields_;  // per correlation
  std::string reasons_;
};

void Append(ParsedFile* into, ParsedFile&& from) {
  for (auto& r : from.rules) into->rules.push_back(std::move(r));
  for (auto& c : from.correlations) into->correlations.push_back(std::move(c));
  for (auto& d : from.dropped) into->dropped.push_back(std::move(d));
}

}  // namespace

std::string_view ResponseKindName(ResponseKind kind) {
  switch (kind) {
    case ResponseKind::kKillProcess:
      return "kill_process";
    case ResponseKind::kKillTree:
      return "kill_tree";
    case ResponseKind::kQuarantineImage:
      return "quarantine_image";
    case ResponseKind::kQuarantineTarget:
      return "quarantine_target";
    case ResponseKind::kIsolate:
      return "isolate";
  }
  return "unknown";
}

std::string LoadReport::ToText() const {
  std::string out = "behavior rules: " + std::to_string(loaded) + " loaded, " + std::to_string(refused) + " refused, " +
                    std::to_string(skipped) + " skipped\n";
  auto section = [&](const char* title, const std::vector<Item>& items) {
    if (items.empty()) return;
    out += title;
    for (const Item& i : items) {
      out += "  " + i.file + ":" + std::to_string(i.line) + ": " + i.rule + ": " + i.reason + "\n";
    }
  };
  section("refused:\n", refused_items);
  section("skipped:\n", skipped_items);
  return out;
}

RuleSet::RuleSet(std::unique_ptr<internal::Compiled> compiled) : compiled_(std::move(compiled)) {}
RuleSet::~RuleSet() = default;

const std::vector<std::shared_ptr<const RuleInfo>>& RuleSet::rules() const { return compiled_->infos; }

Result<std::shared_ptr<const RuleSet>> RuleSet::Load(const std::vector<std::string>& paths, LoadReport* report) {
  ParsedFile all;
  for (const std::string& path : paths) {
    std::vector<std::string> files;
    MAMORI_RETURN_IF_ERROR(CollectFiles(path, &files));
    for (const std::string& file : files) {
      auto text = ReadFileToString(file);
      if (!text.ok()) {
        if (file == path) return text.status();
        internal::AddRefused(report, file, 0, "(whole file)", "cannot read: " + text.status().message());
        continue;
      }
      ParsedFile parsed;
      internal::ParseRuleFile(*text, file, &parsed, report);
      Append(&all, std::move(parsed));
    }
  }
  return std::shared_ptr<const RuleSet>(new RuleSet(Linker(std::move(all), report).Run()));
}

Result<std::shared_ptr<const RuleSet>> RuleSet::LoadFromString(std::string_view yaml, std::string_view name,
                                                               LoadReport* report) {
  ParsedFile parsed;
  internal::ParseRuleFile(yaml, std::string(name), &parsed, report);
  return std::shared_ptr<const RuleSet>(new RuleSet(Linker(std::move(parsed), report).Run()));
}

}  // namespace mamori::behavior::rules
