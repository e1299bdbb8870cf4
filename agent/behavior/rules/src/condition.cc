// Sigma condition grammar (EBNF). Keywords are case-insensitive; precedence
// from loosest to tightest: or, and, not, "x of", parentheses (Sigma rules
// specification 2.0, "Condition").
//
//   condition   = or_expr ;
//   or_expr     = and_expr , { "or" , and_expr } ;
//   and_expr    = not_expr , { "and" , not_expr } ;
//   not_expr    = "not" , not_expr | primary ;
//   primary     = "(" , or_expr , ")" | quantified | identifier ;
//   quantified  = ( "1" | "any" | "all" ) , "of" , ( "them" | pattern ) ;
//   identifier  = word ;                 (* a search identifier of the detection *)
//   pattern     = word ;                 (* "*" matches any run of characters *)
//   word        = word_char , { word_char } ;
//   word_char   = letter | digit | "_" | "-" | "." | "*" ;
//
// Not supported (refused with a reason): the deprecated aggregation pipe
// ("| count() by X > 5") and "near"; Sigma correlation rules replace both.
// Parentheses and "not" nest at most kMaxDepth deep, which bounds the
// recursion of everything that walks the result.
#include "condition.h"

#include <cctype>
#include <string>

namespace mamori::behavior::rules::internal {
namespace {

constexpr int kMaxDepth = 64;

enum class Tok { kWord, kLParen, kRParen, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string_view text;
  int offset = 0;
};

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '*';
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

class Parser {
 public:
  Parser(std::string_view text, ConditionError* error) : text_(text), error_(error) {}

  std::unique_ptr<CondNode> Parse() {
    if (!Advance()) return nullptr;
    if (tok_.kind == Tok::kEnd) return Fail(tok_.offset, "empty condition");
    auto node = ParseOr();
    if (!node) return nullptr;
    if (tok_.kind == Tok::kRParen) return Fail(tok_.offset, "unbalanced ')'");
    if (tok_.kind != Tok::kEnd) return Fail(tok_.offset, "unexpected '" + std::string(tok_.text) + "'");
    return node;
  }

 private:
  // Reads the next token into tok_. False (error set) on a character that
  // cannot start a token.
  bool Advance() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    tok_.offset = static_cast<int>(pos_);
    if (pos_ == text_.size()) {
      tok_ = {Tok::kEnd, {}, tok_.offset};
      return true;
    }
    char c = text_[pos_];
    if (c == '(' || c == ')') {
      tok_ = {c == '(' ? Tok::kLParen : Tok::kRParen, text_.substr(pos_, 1), tok_.offset};
      ++pos_;
      return true;
    }
    if (IsWordChar(c)) {
      size_t start = pos_;
      while (pos_ < text_.size() && IsWordChar(text_[pos_])) ++pos_;
      tok_ = {Tok::kWord, text_.substr(start, pos_ - start), tok_.offset};
      return true;
    }
    if (c == '|') {
      Fail(tok_.offset, "aggregation expressions ('| count() ...') are not supported; use a correlation rule");
      return false;
    }
    Fail(tok_.offset, std::string("unexpected character '") + c + "'");
    return false;
  }

  bool IsKeyword(std::string_view kw) const { return tok_.kind == Tok::kWord && EqualsIgnoreCase(tok_.text, kw); }

  std::unique_ptr<CondNode> Fail(int offset, std::string message) {
    if (error_->message.empty()) *error_ = {offset, std::move(message)};
    return nullptr;
  }

  std::unique_ptr<CondNode> Binary(CondNode::Kind kind, std::string_view keyword,
                                   std::unique_ptr<CondNode> (Parser::*operand)()) {
    auto first = (this->*operand)();
    if (!first) return nullptr;
    if (!IsKeyword(keyword)) return first;
    auto node = std::make_unique<CondNode>();
    node->kind = kind;
    node->offset = first->offset;
    node->children.push_back(std::move(first));
    while (IsKeyword(keyword)) {
      if (!Advance()) return nullptr;
      auto next = (this->*operand)();
      if (!next) return nullptr;
      node->children.push_back(std::move(next));
    }
    return node;
  }

  std::unique_ptr<CondNode> ParseOr() { return Binary(CondNode::Kind::kOr, "or", &Parser::ParseAnd); }
  std::unique_ptr<CondNode> ParseAnd() { return Binary(CondNode::Kind::kAnd, "and", &Parser::ParseNot); }

  // Counts one level of nesting for the lifetime of the object.
  struct Nest {
    explicit Nest(Parser* p) : p(p) { ++p->depth_; }
    ~Nest() { --p->depth_; }
    Parser* p;
  };

  std::unique_ptr<CondNode> ParseNot() {
    if (!IsKeyword("not")) return ParsePrimary();
    int offset = tok_.offset;
    Nest nest(this);
    if (depth_ > kMaxDepth) return Fail(offset, "condition nests deeper than " + std::to_string(kMaxDepth) + " levels");
    if (!Advance()) return nullptr;
    auto operand = ParseNot();
    if (!operand) return nullptr;
    auto node = std::make_unique<CondNode>();
    node->kind = CondNode::Kind::kNot;
    node->offset = offset;
    node->children.push_back(std::move(operand));
    return node;
  }

  std::unique_ptr<CondNode> ParsePrimary() {
    const int offset = tok_.offset;
    switch (tok_.kind) {
      case Tok::kEnd:
        return Fail(offset, "condition ends where an identifier or '(' was expected");
      case Tok::kRParen:
        return Fail(offset, "unbalanced ')'");
      case Tok::kLParen: {
        Nest nest(this);
        if (depth_ > kMaxDepth) {
          return Fail(offset, "condition nests deeper than " + std::to_string(kMaxDepth) + " levels");
        }
        if (!Advance()) return nullptr;
        auto inner = ParseOr();
        if (!inner) return nullptr;
        if (tok_.kind != Tok::kRParen) {
          return Fail(tok_.kind == Tok::kEnd ? offset : tok_.offset,
                      tok_.kind == Tok::kEnd ? "unbalanced '(': no matching ')'"
                                             : "expected ')' but found '" + std::string(tok_.text) + "'");
        }
        if (!Advance()) return nullptr;
        return inner;
      }
      case Tok::kWord:
        break;
    }
    for (std::string_view kw : {"and", "or", "of", "them"}) {
      if (IsKeyword(kw)) return Fail(offset, "'" + std::string(tok_.text) + "' where an identifier was expected");
    }
    if (IsKeyword("near")) return Fail(offset, "'near' is not supported; use a temporal correlation rule");
    const bool quantifier = IsKeyword("1") || IsKeyword("any") || IsKeyword("all");
    std::string_view word = tok_.text;
    if (!Advance()) return nullptr;
    if (quantifier && IsKeyword("of")) {
      if (!Advance()) return nullptr;
      if (tok_.kind != Tok::kWord) return Fail(tok_.offset, "expected a pattern or 'them' after 'of'");
      auto node = std::make_unique<CondNode>();
      node->kind = EqualsIgnoreCase(word, "all") ? CondNode::Kind::kAllOf : CondNode::Kind::kOneOf;
      node->text = IsKeyword("them") ? "them" : std::string(tok_.text);
      node->offset = offset;
      if (!Advance()) return nullptr;
      return node;
    }
    if (word.find('*') != std::string_view::npos) {
      return Fail(offset, "wildcard identifier '" + std::string(word) + "' outside '1 of' / 'all of'");
    }
    if (EqualsIgnoreCase(word, "all") || EqualsIgnoreCase(word, "any") || word == "1") {
      return Fail(tok_.offset, "expected 'of' after '" + std::string(word) + "'");
    }
    auto node = std::make_unique<CondNode>();
    node->kind = CondNode::Kind::kIdentifier;
    node->text = std::string(word);
    node->offset = offset;
    return node;
  }

  std::string_view text_;
  ConditionError* error_;
  int depth_ = 0;
  size_t pos_ = 0;
  Token tok_;
};

}  // namespace

std::unique_ptr<CondNode> ParseCondition(std::string_view text, ConditionError* error) {
  *error = {};
  return Parser(text, error).Parse();
}

bool IdentifierPatternMatches(std::string_view pattern, std::string_view name) {
  // Iterative '*' matching with backtracking to the last star.
  size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace mamori::behavior::rules::internal
