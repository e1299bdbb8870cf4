// Default locations of the agent's files on this OS.
//
//   Linux:   config /etc/mamori, data /var/lib/mamori
//   Windows: config and data under %ProgramData%\Mamori (config\ and data\),
//            %ProgramData% read from the known-folder API (C:\ProgramData when
//            the lookup fails).
//
// Every path stays overridable by flag/config; these are only the defaults.
// Paths are UTF-8 on every OS (converted to UTF-16 at the Windows API edge).
// Thread-safe: no shared state.
#pragma once

#include <string>
#include <string_view>

namespace mamori::platform {

struct DefaultPaths {
  std::string config_dir;   // holds agent.yaml
  std::string config_file;  // config_dir + agent.yaml
  std::string data_dir;     // quarantine, spool, cache, keys: see secure_dir.h
};

DefaultPaths AgentDefaultPaths();

// The OS's preferred separator: '/' on Linux, '\\' on Windows.
char PathSeparator();

// `base` + separator + `leaf`, without doubling a trailing separator of `base`.
std::string JoinPath(std::string_view base, std::string_view leaf);

}  // namespace mamori::platform
