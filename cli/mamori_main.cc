// `mamori`: the local command-line interface.
#include <cstdio>
#include <string>
#include <vector>

#include "agent_commands.h"
#include "mamori/scanner/parser_pool.h"
#include "scan_command.h"

namespace {

constexpr const char* kUsage =
    "usage: mamori <command> [options]\n"
    "\n"
    "commands:\n"
    "  scan PATH...     scan files and directories in this process (like clamscan);\n"
    "                   'mamori scan --help' lists options\n"
    "  scan --agent PATH...   ask the running agent to scan (like clamdscan): findings\n"
    "                   are recorded and the agent's quarantine policy applies\n"
    "  status           the running agent's state\n"
    "  quarantine list | restore ID [--to PATH] [--force] [--allow] | delete ID\n"
    "  update --bundle FILE   install a signed signature bundle in the running agent\n"
    "\n"
    "Agent verbs take --socket PATH (default $MAMORI_SOCKET or /run/mamori/agent.sock).\n"
    "  version          print the version\n";

}  // namespace

int main(int argc, char** argv) {
  // `mamori scan` re-runs this binary as its confined archive and mail parsers.
  if (auto code = mamori::scanner::RunParserWorkerIfRequested(argc, argv)) return *code;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 64 : 0;
  }
  if (args[0] == "version" || args[0] == "--version") {
    std::printf("mamori %s\n", MAMORI_VERSION_STRING);
    return 0;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "scan") {
    for (const auto& a : rest) {
      if (a == "--agent") return mamori::cli::RunAgentCommand("scan", rest);
    }
    return mamori::cli::RunScan(rest);
  }
  if (args[0] == "status" || args[0] == "quarantine" || args[0] == "update") {
    return mamori::cli::RunAgentCommand(args[0], rest);
  }
  std::fprintf(stderr, "mamori: unknown command '%s'\n\n%s", args[0].c_str(), kUsage);
  return 64;
}
