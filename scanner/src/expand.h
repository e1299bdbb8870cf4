// Internal: opening one level of a container or mail message. The one place
// that decides what an object holds; the in-process scan and the sandboxed
// parser worker both recurse through it, so their results are the same.
// Not thread-safe beyond its arguments: `budget` belongs to one top-level scan.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "budget.h"
#include "containers.h"

namespace mamori::scanner::internal {

struct ExpandOptions {
  bool open_containers = true;
  bool open_mail = true;
};

// What `data` is, by its first bytes: a container kind, or mail (kind kNone and
// *mail true), or neither.
ContainerKind SniffObject(std::string_view data, const ExpandOptions& options, bool* mail);

// When `data` (the object `object`, at nesting `depth`) is a container or mail,
// walks its members in document order and calls `on_member(name, bytes)` for
// each, accounting members and decoded bytes in `budget`, recording limits and
// defects in budget.incomplete ("depth" when `depth` is already the limit).
// Returns false when `data` is neither (nothing recorded).
bool ExpandOneLevel(std::string_view data, const std::string& object, int depth, const ExpandOptions& options,
                    Budget& budget, const MemberFn& on_member);

}  // namespace mamori::scanner::internal
