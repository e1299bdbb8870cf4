// LiteralIndex: many literals searched in one pass over a text. ASCII letters
// compare case-insensitively, so field text is scanned as is, without
// lowercasing.
//
// Three modes, for the three ways a rule pins a literal in a field:
//   kAnywhere  Aho-Corasick compiled to a DFA over byte classes: one table
//              lookup per byte of the text.
//   kPrefix    literals that must start the text: a trie walked forward from
//              the first byte, stopping at the first byte no literal continues.
//   kSuffix    literals that must end the text: a trie of the reversed
//              literals walked backward from the last byte. An `endswith:
//              '/curl'` over a 40-byte path typically reads 1-5 bytes.
//
// Used as the rules prefilter: every rule names literals at least one of which
// must occur in some field for the rule to match; scanning each field once
// tells which rules are worth evaluating.
//
// Thread safety: Add/Build on one thread; after Build, Scan is const and may
// run concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mamori::behavior::rules::internal {

class LiteralIndex {
 public:
  enum class Mode : uint8_t { kAnywhere, kPrefix, kSuffix };

  explicit LiteralIndex(Mode mode = Mode::kAnywhere) : mode_(mode) {}

  // Adds a literal (non-empty); returns its id (0, 1, 2... in call order).
  // REQUIRES: Build not called yet.
  uint32_t Add(std::string_view literal);
  void Build();

  Mode mode() const { return mode_; }
  size_t size() const { return lengths_.size(); }
  size_t states() const { return state_count_; }
  uint32_t length(uint32_t id) const { return lengths_[id]; }

  // Calls on_match(id, end) for each occurrence of each literal (kPrefix: at
  // the start of `text` only; kSuffix: at its end only), `end` being the offset
  // just past the occurrence in `text`.
  // REQUIRES: Build called.
  template <typename Fn>
  void Scan(std::string_view text, Fn&& on_match) const {
    const uint32_t* delta = delta_.data();
    const uint8_t* cls = byte_class_.data();
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    uint32_t s = 0;  // a state's offset in delta_ (state number * class count)
    switch (mode_) {
      case Mode::kAnywhere:
        for (size_t i = 0; i < n; ++i) {
          s = delta[s + cls[bytes[i]]];
          if (s >= first_output_offset_) Report(s, i + 1, on_match);
        }
        return;
      case Mode::kPrefix:
        for (size_t i = 0; i < n; ++i) {
          s = delta[s + cls[bytes[i]]];
          if (s == kDead) return;
          if (s >= first_output_offset_) Report(s, i + 1, on_match);
        }
        return;
      case Mode::kSuffix:
        for (size_t i = n; i > 0; --i) {
          s = delta[s + cls[bytes[i - 1]]];
          if (s == kDead) return;
          if (s >= first_output_offset_) Report(s, n, on_match);
        }
        return;
    }
  }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kDead = UINT32_MAX;  // anchored modes: no literal continues

  // Reports the literals ending at state offset `s` (and, in kAnywhere, those
  // on its dictionary suffix chain).
  template <typename Fn>
  void Report(uint32_t s, size_t end, Fn& on_match) const {
    for (uint32_t o = s; o != kNone; o = dict_link_[(o - first_output_offset_) / class_count_]) {
      const uint32_t k = (o - first_output_offset_) / class_count_;
      for (uint32_t j = out_begin_[k]; j < out_begin_[k + 1]; ++j) on_match(out_ids_[j], end);
    }
  }

  Mode mode_;
  std::vector<std::string> pending_;  // literals until Build (folded; reversed in kSuffix)
  std::vector<uint32_t> lengths_;

  // Built automaton. States are numbered so that those reporting something
  // come last: Scan tests one compare per byte.
  std::array<uint8_t, 256> byte_class_{};
  uint32_t class_count_ = 1;
  uint32_t state_count_ = 1;
  uint32_t first_output_offset_ = UINT32_MAX;
  std::vector<uint32_t> delta_;      // offset + class -> offset of the next state (or kDead)
  std::vector<uint32_t> dict_link_;  // per output state: offset of the next output state on the suffix chain, or kNone
  std::vector<uint32_t> out_begin_;  // per output state: range in out_ids_ (literals ending exactly there)
  std::vector<uint32_t> out_ids_;
};

}  // namespace mamori::behavior::rules::internal
