// `mamori`: the local command-line interface.
#include <cstdio>
#include <string>
#include <vector>

#include "scan_command.h"

namespace {

constexpr const char* kUsage =
    "usage: mamori <command> [options]\n"
    "\n"
    "commands:\n"
    "  scan PATH...     scan files and directories in this process (like clamscan);\n"
    "                   'mamori scan --help' lists options\n"
    "  version          print the version\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 64 : 0;
  }
  if (args[0] == "version" || args[0] == "--version") {
    std::printf("mamori %s\n", MAMORI_VERSION_STRING);
    return 0;
  }
  if (args[0] == "scan") return mamori::cli::RunScan({args.begin() + 1, args.end()});
  std::fprintf(stderr, "mamori: unknown command '%s'\n\n%s", args[0].c_str(), kUsage);
  return 64;
}
