#include "detection.h"

#include <map>

#include "condition.h"

namespace mamori::behavior::rules::internal {

uint32_t Program::AddTest(FieldTest test) {
  tests_.push_back(std::move(test));
  nodes_.push_back({Node::Op::kTest, static_cast<uint32_t>(tests_.size() - 1), 0});
  return static_cast<uint32_t>(nodes_.size() - 1);
}

uint32_t Program::AddNode(Node::Op op, const std::vector<uint32_t>& kids) {
  if ((op == Node::Op::kAnd || op == Node::Op::kOr) && kids.size() == 1) return kids[0];
  uint32_t begin = static_cast<uint32_t>(kids_.size());
  kids_.insert(kids_.end(), kids.begin(), kids.end());
  nodes_.push_back({op, begin, static_cast<uint32_t>(kids_.size())});
  return static_cast<uint32_t>(nodes_.size() - 1);
}

bool Program::Eval(uint32_t n, Category category, EventView& view) const {
  const Node& node = nodes_[n];
  switch (node.op) {
    case Node::Op::kTest:
      return EvalFieldTest(tests_[node.begin], category, view);
    case Node::Op::kNot:
      return !Eval(kids_[node.begin], category, view);
    case Node::Op::kAnd:
      for (uint32_t k = node.begin; k < node.end; ++k) {
        if (!Eval(kids_[k], category, view)) return false;
      }
      return true;
    case Node::Op::kOr:
      for (uint32_t k = node.begin; k < node.end; ++k) {
        if (Eval(kids_[k], category, view)) return true;
      }
      return false;
  }
  return false;
}

namespace {

using Op = Program::Node::Op;

class Compiler {
 public:
  Compiler(Category category, CompiledDetection* out, DetectionError* error)
      : category_(category), program_(out->program), error_(error) {}

  bool Run(const YAML::Node& detection) {
    if (!detection.IsMap()) return Fail(detection.Mark(), "'detection' must be a mapping");
    std::optional<YAML::Node> condition;  // (YAML::Node assignment would rebind shared nodes)
    for (const auto& kv : detection) {
      if (!kv.first.IsScalar()) return Fail(kv.first.Mark(), "search identifiers must be plain names");
      const std::string key = kv.first.Scalar();
      if (key == "condition") {
        condition.emplace(kv.second);
        continue;
      }
      if (key == "timeframe") continue;  // only meaningful with aggregations, refused in the condition
      if (identifiers_.count(key)) return Fail(kv.first.Mark(), "search identifier '" + key + "' defined twice");
      uint32_t node = 0;
      if (!CompileIdentifier(key, kv.second, &node)) return false;
      identifiers_.emplace(key, node);
      order_.push_back(key);
    }
    if (!condition) return Fail(detection.Mark(), "detection has no 'condition'");
    std::vector<uint32_t> alternatives;
    if (condition->IsSequence()) {
      // A list of conditions means any of them (Sigma 1.0; still accepted).
      for (const YAML::Node& c : *condition) {
        uint32_t root = 0;
        if (!CompileCondition(c, &root)) return false;
        alternatives.push_back(root);
      }
      if (alternatives.empty()) return Fail(condition->Mark(), "empty condition list");
    } else {
      uint32_t root = 0;
      if (!CompileCondition(*condition, &root)) return false;
      alternatives.push_back(root);
    }
    program_.set_root(program_.AddNode(Op::kOr, alternatives));
    return true;
  }

 private:
  bool Fail(const YAML::Mark& mark, std::string message) {
    *error_ = {mark, std::move(message)};
    return false;
  }

  // One value or a list of values of a field (or of a keyword search).
  bool Values(const YAML::Node& node, std::vector<SigmaValue>* out) {
    auto one = [&](const YAML::Node& v) {
      if (v.IsNull()) {
        out->push_back({true, {}});
      } else if (v.IsScalar()) {
        out->push_back({false, v.Scalar()});
      } else {
        return Fail(v.Mark(), "a value must be a string, number, boolean or null");
      }
      return true;
    };
    if (node.IsSequence()) {
      for (const YAML::Node& v : node) {
        if (!one(v)) return false;
      }
      return true;
    }
    return one(node);
  }

  bool FieldEntry(const YAML::Node& key, const YAML::Node& value, uint32_t* node) {
    if (!key.IsScalar()) return Fail(key.Mark(), "field names must be strings");
    const std::string& spec = key.Scalar();
    std::vector<std::string> parts;
    size_t start = 0;
    for (;;) {
      size_t bar = spec.find('|', start);
      parts.push_back(spec.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    std::optional<FieldId> field;
    if (!parts[0].empty()) {
      field = FieldFromName(parts[0]);
      if (!field || !FieldAvailable(*field, category_)) return Fail(key.Mark(), FieldRefusal(parts[0], category_));
    }
    std::vector<std::string> modifiers(parts.begin() + 1, parts.end());
    std::vector<SigmaValue> values;
    if (!Values(value, &values)) return false;
    std::string why;
    auto test = CompileFieldTest(field, modifiers, values, category_, &why);
    if (!test) return Fail(key.Mark(), "'" + spec + "': " + why);
    *node = program_.AddTest(std::move(*test));
    return true;
  }

  bool Map(const YAML::Node& map, uint32_t* node) {
    std::vector<uint32_t> all;
    std::map<std::string, bool> seen;
    for (const auto& kv : map) {
      if (kv.first.IsScalar() && !seen.emplace(kv.first.Scalar(), true).second) {
        return Fail(kv.first.Mark(), "duplicate key '" + kv.first.Scalar() + "' in one mapping");
      }
      uint32_t n = 0;
      if (!FieldEntry(kv.first, kv.second, &n)) return false;
      all.push_back(n);
    }
    if (all.empty()) return Fail(map.Mark(), "empty mapping");
    *node = program_.AddNode(Op::kAnd, all);
    return true;
  }

  bool Keywords(const std::vector<SigmaValue>& values, const YAML::Mark& mark, uint32_t* node) {
    std::string why;
    auto test = CompileFieldTest(std::nullopt, {}, values, category_, &why);
    if (!test) return Fail(mark, why);
    *node = program_.AddTest(std::move(*test));
    return true;
  }

  bool CompileIdentifier(const std::string& name, const YAML::Node& def, uint32_t* node) {
    if (def.IsMap()) return Map(def, node);
    if (def.IsSequence()) {
      if (def.size() == 0) return Fail(def.Mark(), "search identifier '" + name + "' is an empty list");
      std::vector<uint32_t> any;
      std::vector<SigmaValue> keywords;
      for (const YAML::Node& item : def) {
        if (item.IsMap()) {
          uint32_t n = 0;
          if (!Map(item, &n)) return false;
          any.push_back(n);
        } else if (item.IsScalar()) {
          keywords.push_back({false, item.Scalar()});
        } else {
          return Fail(item.Mark(), "list items of '" + name + "' must be mappings or keyword strings");
        }
      }
      if (!keywords.empty()) {
        uint32_t n = 0;
        if (!Keywords(keywords, def.Mark(), &n)) return false;
        any.push_back(n);
      }
      *node = program_.AddNode(Op::kOr, any);
      return true;
    }
    if (def.IsScalar()) return Keywords({{false, def.Scalar()}}, def.Mark(), node);
    return Fail(def.Mark(), "search identifier '" + name + "' is empty");
  }

  bool CompileCondition(const YAML::Node& cond, uint32_t* root) {
    if (!cond.IsScalar()) return Fail(cond.Mark(), "'condition' must be a string");
    const std::string& text = cond.Scalar();
    cond_mark_ = cond.Mark();
    cond_quoted_ = cond.Tag() == "!";
    cond_text_ = text;
    ConditionError err;
    auto ast = ParseCondition(text, &err);
    if (!ast) return FailAt(err.offset, err.message);
    return Lower(*ast, root);
  }

  bool FailAt(int offset, const std::string& message) {
    YAML::Mark mark = cond_mark_;
    if (mark.line >= 0 && cond_text_.find('\n') == std::string::npos) mark.column += offset + (cond_quoted_ ? 1 : 0);
    return Fail(mark, "condition '" + Abbreviate(cond_text_) + "': " + message);
  }

  bool Lower(const CondNode& n, uint32_t* out) {
    switch (n.kind) {
      case CondNode::Kind::kIdentifier: {
        auto it = identifiers_.find(n.text);
        if (it == identifiers_.end()) return FailAt(n.offset, "unknown search identifier '" + n.text + "'");
        *out = it->second;
        return true;
      }
      case CondNode::Kind::kOneOf:
      case CondNode::Kind::kAllOf: {
        std::vector<uint32_t> kids;
        const bool them = n.text == "them";
        for (const std::string& name : order_) {
          if (them ? name[0] != '_' : IdentifierPatternMatches(n.text, name)) kids.push_back(identifiers_[name]);
        }
        if (kids.empty()) return FailAt(n.offset, "no search identifier matches '" + n.text + "'");
        *out = program_.AddNode(n.kind == CondNode::Kind::kOneOf ? Op::kOr : Op::kAnd, kids);
        return true;
      }
      case CondNode::Kind::kNot:
      case CondNode::Kind::kAnd:
      case CondNode::Kind::kOr: {
        std::vector<uint32_t> kids;
        for (const auto& child : n.children) {
          uint32_t k = 0;
          if (!Lower(*child, &k)) return false;
          kids.push_back(k);
        }
        Op op = n.kind == CondNode::Kind::kNot ? Op::kNot : n.kind == CondNode::Kind::kAnd ? Op::kAnd : Op::kOr;
        *out = program_.AddNode(op, kids);
        return true;
      }
    }
    return false;
  }

  Category category_;
  Program& program_;
  DetectionError* error_;
  std::map<std::string, uint32_t> identifiers_;
  std::vector<std::string> order_;  // identifiers in definition order
  YAML::Mark cond_mark_;
  bool cond_quoted_ = false;
  std::string cond_text_;
};

// ---- Prefilter ------------------------------------------------------------

using AtomSet = std::optional<std::vector<Atom>>;  // nullopt: no necessary literal

// Higher is more selective: long literals, anchored ones.
int Score(const Atom& a) {
  int s = static_cast<int>(a.literal.size());
  if (a.anchor == Atom::Anchor::kStart || a.anchor == Atom::Anchor::kEnd) s += 2;
  if (a.anchor == Atom::Anchor::kBoth) s += 4;
  return s;
}

int Score(const std::vector<Atom>& set) {
  int s = INT32_MAX;
  for (const Atom& a : set) s = std::min(s, Score(a));
  return s;
}

bool Better(const std::vector<Atom>& a, const std::vector<Atom>& b) {
  int sa = Score(a), sb = Score(b);
  return sa != sb ? sa > sb : a.size() < b.size();
}

// Literals one of which a value needs in `field` to match, if any: the most
// selective literal of a string pattern, or the literals RE2 finds in a regex.
AtomSet ValueAtoms(FieldId field, const ValueMatcher& m) {
  if (m.kind == ValueMatcher::Kind::kRegex) {
    if (m.regex_atoms.empty()) return std::nullopt;
    std::vector<Atom> set;
    for (const std::string& a : m.regex_atoms) set.push_back({field, a, Atom::Anchor::kNone});
    return set;
  }
  if (m.kind != ValueMatcher::Kind::kString) return std::nullopt;
  const auto& tokens = m.pattern.tokens();
  std::optional<Atom> best;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].kind != StringPattern::Token::kLiteral) continue;
    const bool start = i == 0, end = i + 1 == tokens.size();
    Atom a{field, tokens[i].text,
           start && end ? Atom::Anchor::kBoth
           : start      ? Atom::Anchor::kStart
           : end        ? Atom::Anchor::kEnd
                        : Atom::Anchor::kNone};
    if (!best || Score(a) > Score(*best)) best = std::move(a);
  }
  if (!best) return std::nullopt;
  return std::vector<Atom>{std::move(*best)};
}

AtomSet Necessary(const Program& p, uint32_t n) {
  const Program::Node& node = p.node(n);
  switch (node.op) {
    case Op::kNot:
      return std::nullopt;
    case Op::kTest: {
      const FieldTest& t = p.test(node.begin);
      if (!t.field || t.negate) return std::nullopt;
      // Per value group, the union of its variants' literals.
      std::vector<AtomSet> groups;
      for (const ValueMatcher& m : t.values) {
        AtomSet s = ValueAtoms(*t.field, m);
        while (groups.size() <= m.group) groups.emplace_back(std::vector<Atom>{});
        AtomSet& g = groups[m.group];
        if (!g) continue;
        if (!s) {
          g.reset();
        } else {
          g->insert(g->end(), std::make_move_iterator(s->begin()), std::make_move_iterator(s->end()));
        }
      }
      if (t.all) {  // every group must match: one group's literals are enough to require
        AtomSet best;
        for (AtomSet& g : groups) {
          if (g && (!best || Better(*g, *best))) best = std::move(g);
        }
        return best;
      }
      std::vector<Atom> set;
      for (AtomSet& g : groups) {
        if (!g) return std::nullopt;
        set.insert(set.end(), std::make_move_iterator(g->begin()), std::make_move_iterator(g->end()));
      }
      return set;
    }
    case Op::kAnd: {
      AtomSet best;
      for (uint32_t k = node.begin; k < node.end; ++k) {
        AtomSet s = Necessary(p, p.kids()[k]);
        if (s && (!best || Better(*s, *best))) best = std::move(s);
      }
      return best;
    }
    case Op::kOr: {
      std::vector<Atom> all;
      for (uint32_t k = node.begin; k < node.end; ++k) {
        AtomSet s = Necessary(p, p.kids()[k]);
        if (!s) return std::nullopt;
        all.insert(all.end(), std::make_move_iterator(s->begin()), std::make_move_iterator(s->end()));
      }
      return all;
    }
  }
  return std::nullopt;
}

}  // namespace

bool CompileDetection(const YAML::Node& detection, Category category, CompiledDetection* out, DetectionError* error) {
  Compiler compiler(category, out, error);
  if (!compiler.Run(detection)) return false;
  out->prefilter = Necessary(out->program, out->program.root());
  if (out->prefilter && out->prefilter->empty()) out->prefilter.reset();
  return true;
}

}  // namespace mamori::behavior::rules::internal
