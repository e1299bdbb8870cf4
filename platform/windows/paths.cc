// Windows: %ProgramData%\Mamori\{config,data} from the known-folder API.
#include "mamori/platform/paths.h"

#include <windows.h>
#include <shlobj.h>

#include "win_util.h"

namespace mamori::platform {

DefaultPaths AgentDefaultPaths() {
  std::string program_data = "C:\\ProgramData";
  PWSTR p = nullptr;
  if (SUCCEEDED(::SHGetKnownFolderPath(FOLDERID_ProgramData, 0, nullptr, &p)) && p != nullptr) {
    program_data = win::Utf8(p);
  }
  if (p != nullptr) ::CoTaskMemFree(p);
  std::string root = JoinPath(program_data, "Mamori");
  std::string config = JoinPath(root, "config");
  return DefaultPaths{config, JoinPath(config, "agent.yaml"), JoinPath(root, "data")};
}

char PathSeparator() { return '\\'; }

}  // namespace mamori::platform
