#include "agent_commands.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "mamori/agent/control.h"

namespace mamori::cli {
namespace {

constexpr const char* kDefaultSocket = "/run/mamori/agent.sock";

std::string Absolute(const std::string& p) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(p, ec);
  return ec ? p : abs.lexically_normal().string();
}

}  // namespace

int RunAgentCommand(const std::string& verb, const std::vector<std::string>& in) {
  std::string socket;
  std::vector<std::string> args;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == "--socket" && i + 1 < in.size()) socket = in[++i];
    else if (in[i] != "--agent") args.push_back(in[i]);
  }
  if (socket.empty()) {
    const char* env = std::getenv("MAMORI_SOCKET");
    socket = env != nullptr && *env != '\0' ? env : kDefaultSocket;
  }
  std::vector<std::string> request;
  if (verb == "status") {
    request = {"status"};
  } else if (verb == "scan") {
    request = {"scan"};
    for (const auto& a : args) request.push_back(a == "--json" ? a : Absolute(a));
  } else if (verb == "quarantine") {
    if (args.empty() || (args[0] != "list" && args[0] != "restore" && args[0] != "delete")) {
      std::fputs("usage: mamori quarantine list | restore ID [--to PATH] [--force] [--allow] | delete ID\n", stderr);
      return 64;
    }
    request = {"quarantine-" + args[0]};
    for (size_t i = 1; i < args.size(); ++i) {
      request.push_back(args[i]);
      if (args[i] == "--to" && i + 1 < args.size()) request.push_back(Absolute(args[++i]));
    }
  } else if (verb == "update") {
    std::string bundle;
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--bundle" && i + 1 < args.size()) bundle = args[++i];
    }
    if (bundle.empty()) {
      std::fputs("usage: mamori update --bundle FILE\n", stderr);
      return 64;
    }
    request = {"update", Absolute(bundle)};
  } else {
    return 64;
  }
  auto code = agent::ControlCall(
      socket, request, [](const std::string& l) { std::printf("%s\n", l.c_str()); },
      [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); });
  std::fflush(stdout);
  if (!code.ok()) {
    std::fprintf(stderr, "mamori: %s\n", code.status().message().c_str());
    return 2;
  }
  return *code;
}

}  // namespace mamori::cli
