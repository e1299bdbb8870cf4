// The administrative verbs of mamori-server, acting on the store and the CA
// directory directly (a ConsoleService will take them over):
//   ca export | token create | token list | agent list | agent revoke | agent unrevoke
#pragma once

#include <string>
#include <vector>

#include "mamori/server/config.h"

namespace mamori::server {

// Runs `verb` with its arguments; returns the process exit code (0 ok,
// 1 failed, 64 usage). Output on stdout, diagnostics on stderr.
int RunAdminVerb(const ServerConfig& config, const std::string& verb, const std::vector<std::string>& args);

}  // namespace mamori::server
