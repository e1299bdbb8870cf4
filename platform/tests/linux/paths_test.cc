#include "mamori/platform/paths.h"

#include <catch2/catch.hpp>

namespace mamori::platform {
namespace {

TEST_CASE("Linux default paths are /etc/mamori and /var/lib/mamori", "[platform]") {
  DefaultPaths p = AgentDefaultPaths();
  CHECK(p.config_dir == "/etc/mamori");
  CHECK(p.config_file == "/etc/mamori/agent.yaml");
  CHECK(p.data_dir == "/var/lib/mamori");
  CHECK(PathSeparator() == '/');
}

TEST_CASE("JoinPath adds one separator and never doubles it", "[platform]") {
  CHECK(JoinPath("/var/lib/mamori", "spool") == "/var/lib/mamori/spool");
  CHECK(JoinPath("/var/lib/mamori/", "spool") == "/var/lib/mamori/spool");
  CHECK(JoinPath("", "spool") == "spool");
}

}  // namespace
}  // namespace mamori::platform
