// The administrative verbs of mamori-server, acting on the store and the CA
// directory directly (console users: docs/console.md):
//   ca export | token create | token list | agent list | agent revoke | agent unrevoke |
//   user add | user list | user disable | user enable | user cert
#pragma once

#include <string>
#include <vector>

#include "mamori/server/config.h"

namespace mamori::server {

// Runs `verb` with its arguments; returns the process exit code (0 ok,
// 1 failed, 64 usage). Output on stdout, diagnostics on stderr.
int RunAdminVerb(const ServerConfig& config, const std::string& verb, const std::vector<std::string>& args);

}  // namespace mamori::server
