// The Catch2 main of every test binary. A test binary may also be started as a
// sandboxed parser worker (tests of ParserPool and of an agent scanning with
// one): that must be decided before Catch parses the command line.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "mamori/scanner/parser_pool.h"

int main(int argc, char** argv) {
  if (auto code = mamori::scanner::RunParserWorkerIfRequested(argc, argv)) return *code;
  return Catch::Session().run(argc, argv);
}
