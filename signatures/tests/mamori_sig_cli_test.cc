// mamori-sig as a publisher runs it: the real binary on real files.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>

#include "test_util.h"

namespace {

using Run = mamori::testing::CommandResult;

Run Sig(const std::string& args) {
  return mamori::testing::RunCommand(std::string(MAMORI_SIG_BINARY) + " " + args + " 2>&1");
}

bool Has(const Run& r, const std::string& s) { return r.out.find(s) != std::string::npos; }

TEST_CASE("mamori-sig: keygen, import, build, inspect, verify and diff work together") {
  mamori::testing::TempDir d;
  const std::string p = d.path();
  REQUIRE(Sig("keygen " + p + "/pub").exit_code == 0);
  d.Write("feed.csv", "# \"first_seen\",\"sha256_hash\"\n\"x\",\"" + std::string(64, 'a') + "\"\n\"y\",\"bad\"\n");
  Run imp = Sig("import sha256-list " + p + "/feed.csv -o " + p + "/v1/hashes/feed.mhdb --name Feed.Bad");
  CHECK(imp.exit_code == 0);
  CHECK(Has(imp, "taken 1 hash signatures"));
  CHECK(Has(imp, "skipped " + p + "/feed.csv:3: not a SHA-256 digest"));
  d.Write("v1/yara/a.yar", "rule Alpha { strings: $a = \"alpha-marker\" condition: $a }\n");
  REQUIRE(Sig("build " + p + "/v1 -o " + p + "/v1.mbundle --version 1 --key " + p + "/pub.key").exit_code == 0);
  d.Write("v2/hashes/feed.mhdb", std::string(64, 'a') + ":*:Feed.Bad\n" + std::string(64, 'b') + ":*:Feed.Bad\n");
  d.Write("v2/yara/a.yar", "rule Beta { strings: $b = \"beta-marker\" condition: $b }\n");
  Run build2 = Sig("build " + p + "/v2 -o " + p + "/v2.mbundle --version 2 --key " + p + "/pub.key");
  CHECK(build2.exit_code == 0);
  CHECK(Has(build2, "version 2"));

  Run inspect = Sig("inspect " + p + "/v2.mbundle --pubkey " + p + "/pub.pub");
  CHECK(inspect.exit_code == 0);
  CHECK(Has(inspect, "signature verified"));
  CHECK(Has(inspect, "hashes     2"));
  CHECK(Has(inspect, "yara rules 1"));
  Run unverified = Sig("inspect " + p + "/v2.mbundle");
  CHECK(Has(unverified, "signature NOT verified"));

  CHECK(Sig("verify " + p + "/v2.mbundle --pubkey " + p + "/pub.pub").exit_code == 0);
  Run downgrade = Sig("verify " + p + "/v1.mbundle --pubkey " + p + "/pub.pub --min-version 2");
  CHECK(downgrade.exit_code == 1);
  CHECK(Has(downgrade, "downgrade or replay refused"));

  Run diff = Sig("diff " + p + "/v1.mbundle " + p + "/v2.mbundle --pubkey " + p + "/pub.pub");
  CHECK(diff.exit_code == 0);
  CHECK(Has(diff, "version 1 -> 2"));
  CHECK(Has(diff, "~ hashes/feed.mhdb"));
  CHECK(Has(diff, "hashes     1 -> 2"));
  CHECK(Has(diff, "+ rule a:Beta"));
  CHECK(Has(diff, "- rule a:Alpha"));
}

TEST_CASE("mamori-sig: clear usage errors") {
  CHECK(Sig("").exit_code == 64);
  CHECK(Sig("build").exit_code == 64);
  CHECK(Sig("frobnicate").exit_code == 64);
  Run missing = Sig("verify /nonexistent/x.mbundle --pubkey /nonexistent/k.pub");
  CHECK(missing.exit_code == 1);
  CHECK(Has(missing, "/nonexistent/k.pub"));
}

}  // namespace
