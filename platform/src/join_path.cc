// OS-independent part of paths.h.
#include "mamori/platform/paths.h"

namespace mamori::platform {

std::string JoinPath(std::string_view base, std::string_view leaf) {
  std::string out(base);
  const char sep = PathSeparator();
  if (!out.empty() && out.back() != sep && out.back() != '/') out += sep;
  out += leaf;
  return out;
}

}  // namespace mamori::platform
