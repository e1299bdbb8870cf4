// `mamori` verbs that talk to the running agent over its control socket:
// status, scan --agent, quarantine list|restore|delete, update --bundle.
#pragma once

#include <string>
#include <vector>

namespace mamori::cli {

// Socket: --socket PATH, else $MAMORI_SOCKET, else /run/mamori/agent.sock.
// Returns the process exit code (the agent's; 2 when it cannot be reached).
int RunAgentCommand(const std::string& verb, const std::vector<std::string>& args);

}  // namespace mamori::cli
