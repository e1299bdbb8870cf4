#include "expand.h"

#include <algorithm>

#include "mail.h"

namespace mamori::scanner::internal {

ContainerKind SniffObject(std::string_view data, const ExpandOptions& options, bool* mail) {
  ContainerKind kind = options.open_containers ? SniffContainer(data) : ContainerKind::kNone;
  *mail = kind == ContainerKind::kNone && options.open_mail && LooksLikeMail(data);
  return kind;
}

bool ExpandOneLevel(std::string_view data, const std::string& object, int depth, const ExpandOptions& options,
                    Budget& budget, const MemberFn& on_member) {
  bool mail = false;
  ContainerKind kind = SniffObject(data, options, &mail);
  if (kind == ContainerKind::kNone && !mail) return false;
  if (depth >= budget.limits.max_depth) {
    budget.Incomplete("depth", object);
    return true;
  }
  if (kind != ContainerKind::kNone) {
    ContainerSource src{data, -1, data.size()};
    WalkContainer(src, kind, object, budget, on_member);
    return true;
  }
  MailLimits ml;
  ml.max_parts = budget.limits.max_members - std::min(budget.members, budget.limits.max_members);
  ml.max_total_bytes = budget.limits.max_total_extracted - std::min(budget.extracted_bytes, budget.limits.max_total_extracted);
  ml.max_depth = budget.limits.max_depth - depth;
  MailParseResult parsed = ParseMail(data, ml);
  if (!parsed.incomplete.empty()) budget.Incomplete(parsed.incomplete, object);
  // The parts decoded before a limit are scanned all the same; the limit only
  // stops what comes after this mail.
  for (const MailPart& part : parsed.parts) {
    if (budget.exhausted) break;
    ++budget.members;
    budget.extracted_bytes += part.data.size();
    on_member(part.name, part.data);
  }
  if (budget.members >= budget.limits.max_members || budget.extracted_bytes >= budget.limits.max_total_extracted) {
    budget.exhausted = true;
  }
  return true;
}

}  // namespace mamori::scanner::internal
