#include "literal_index.h"

#include <algorithm>
#include <cassert>
#include <deque>

#include "fields.h"

namespace mamori::behavior::rules::internal {

uint32_t LiteralIndex::Add(std::string_view literal) {
  assert(!literal.empty());
  std::string folded = FoldAscii(literal);
  if (mode_ == Mode::kSuffix) std::reverse(folded.begin(), folded.end());
  pending_.push_back(std::move(folded));
  lengths_.push_back(static_cast<uint32_t>(literal.size()));
  return static_cast<uint32_t>(lengths_.size() - 1);
}

void LiteralIndex::Build() {
  // Byte classes: one per distinct (folded) byte used by a literal, class 0
  // for every other byte. 'A' shares the class of 'a'.
  byte_class_.fill(0);
  class_count_ = 1;
  for (const std::string& lit : pending_) {
    for (char ch : lit) {
      auto b = static_cast<unsigned char>(ch);
      if (byte_class_[b] == 0) byte_class_[b] = static_cast<uint8_t>(class_count_++);
    }
  }
  for (int c = 'A'; c <= 'Z'; ++c) byte_class_[c] = byte_class_[c - 'A' + 'a'];
  const uint32_t nc = class_count_;

  // Trie (state 0 = root).
  std::vector<uint32_t> go(nc, kNone);
  std::vector<std::vector<uint32_t>> own(1);
  uint32_t n = 1;
  for (uint32_t id = 0; id < pending_.size(); ++id) {
    uint32_t s = 0;
    for (char ch : pending_[id]) {
      uint32_t c = byte_class_[static_cast<unsigned char>(ch)];
      if (go[s * nc + c] == kNone) {
        go[s * nc + c] = n++;
        go.resize(static_cast<size_t>(n) * nc, kNone);
        own.emplace_back();
      }
      s = go[s * nc + c];
    }
    own[s].push_back(id);
  }

  // BFS order; in kAnywhere also failure links completing the DFA. Anchored
  // modes keep missing transitions dead.
  std::vector<uint32_t> fail(n, 0), dict(n, kNone), order;
  order.reserve(n);
  std::deque<uint32_t> queue;
  for (uint32_t c = 0; c < nc; ++c) {
    if (go[c] != kNone) queue.push_back(go[c]);
  }
  const bool anywhere = mode_ == Mode::kAnywhere;
  if (anywhere) {
    for (uint32_t c = 0; c < nc; ++c) {
      if (go[c] == kNone) go[c] = 0;
    }
  }
  while (!queue.empty()) {
    uint32_t s = queue.front();
    queue.pop_front();
    order.push_back(s);
    if (anywhere) dict[s] = !own[fail[s]].empty() ? fail[s] : dict[fail[s]];
    for (uint32_t c = 0; c < nc; ++c) {
      uint32_t t = go[s * nc + c];
      if (t == kNone) {
        if (anywhere) go[s * nc + c] = go[fail[s] * nc + c];
      } else {
        if (anywhere) fail[t] = go[fail[s] * nc + c];
        queue.push_back(t);
      }
    }
  }

  // Renumber: states that report something go last.
  std::vector<uint32_t> renum(n);
  uint32_t next = 0;
  renum[0] = next++;
  auto reports = [&](uint32_t s) { return !own[s].empty() || dict[s] != kNone; };
  for (uint32_t s : order) {
    if (!reports(s)) renum[s] = next++;
  }
  const uint32_t first_output_state = next;
  for (uint32_t s : order) {
    if (reports(s)) renum[s] = next++;
  }
  state_count_ = n;
  first_output_offset_ = first_output_state * nc;
  delta_.assign(static_cast<size_t>(n) * nc, kDead);
  for (uint32_t s = 0; s < n; ++s) {
    for (uint32_t c = 0; c < nc; ++c) {
      uint32_t t = go[s * nc + c];
      if (t != kNone) delta_[renum[s] * nc + c] = renum[t] * nc;
    }
  }
  const uint32_t outputs = n - first_output_state;
  dict_link_.assign(outputs, kNone);
  out_begin_.assign(outputs + 1, 0);
  std::vector<uint32_t> by_new(n);
  for (uint32_t s = 0; s < n; ++s) by_new[renum[s]] = s;
  out_ids_.clear();
  for (uint32_t k = 0; k < outputs; ++k) {
    uint32_t s = by_new[first_output_state + k];
    out_begin_[k] = static_cast<uint32_t>(out_ids_.size());
    out_ids_.insert(out_ids_.end(), own[s].begin(), own[s].end());
    if (dict[s] != kNone) dict_link_[k] = renum[dict[s]] * nc;
  }
  out_begin_[outputs] = static_cast<uint32_t>(out_ids_.size());
  pending_.clear();
  pending_.shrink_to_fit();
}

}  // namespace mamori::behavior::rules::internal
