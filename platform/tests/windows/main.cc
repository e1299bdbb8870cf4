// Catch2 runner for the Windows platform tests, plus the child modes the
// tests start this same executable in:
//   --sleep-child   sleeps 30 s (a process of our own to list and kill)
#define CATCH_CONFIG_RUNNER
#include <windows.h>

#include <catch2/catch.hpp>
#include <cstring>

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--sleep-child") == 0) {
    ::Sleep(30'000);
    return 0;
  }
  return Catch::Session().run(argc, argv);
}
