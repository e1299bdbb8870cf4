#include "mamori/platform/paths.h"

namespace mamori::platform {

DefaultPaths AgentDefaultPaths() {
  return DefaultPaths{"/etc/mamori", "/etc/mamori/agent.yaml", "/var/lib/mamori"};
}

char PathSeparator() { return '/'; }

}  // namespace mamori::platform
