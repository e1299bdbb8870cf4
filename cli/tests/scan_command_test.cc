// End-to-end tests of `mamori scan` as a user runs it: the real binary, real files.
#include <catch2/catch.hpp>

#include "test_util.h"

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

using mamori::testing::Eicar;
using mamori::testing::TempDir;
using Run = mamori::testing::CommandResult;

Run Mamori(const std::string& args) {
  return mamori::testing::RunCommand(std::string(MAMORI_BINARY) + " " + args + " 2>/dev/null");
}

const std::string kSigs = std::string(" --signatures ") + MAMORI_SOURCE_DIR + "/signatures/default ";

TEST_CASE("mamori scan exits 0 on a clean tree and 1 when something is found") {
  TempDir dir;
  dir.Write("a/clean.txt", "hello\n");
  Run clean = Mamori("scan --no-cache" + kSigs + dir.path());
  CHECK(clean.exit_code == 0);
  CHECK(clean.out.find("SCAN SUMMARY") != std::string::npos);
  std::string bad = dir.Write("a/b/eicar.com", Eicar());
  Run found = Mamori("scan --no-cache" + kSigs + dir.path());
  CHECK(found.exit_code == 1);
  CHECK(found.out.find(bad + ": ") != std::string::npos);
  CHECK(found.out.find(" FOUND") != std::string::npos);
}

TEST_CASE("mamori scan opens archives in sandboxed workers and finds the same without them") {
  TempDir dir;
  std::string zip = dir.Write("mail/invoice.zip", mamori::testing::MakeArchive("zip", {{"docs/e.com", Eicar()}}));
  Run sandboxed = Mamori("scan --json --no-cache" + kSigs + dir.path());
  Run in_process = Mamori("scan --json --no-cache --no-sandbox" + kSigs + dir.path());
  INFO(sandboxed.out << "\n" << in_process.out);
  CHECK(sandboxed.exit_code == 1);
  CHECK(in_process.exit_code == 1);
  const std::string finding = "\"object\":\"" + zip + "!docs/e.com\"";
  CHECK(sandboxed.out.find(finding) != std::string::npos);
  CHECK(in_process.out.find(finding) != std::string::npos);
  CHECK(sandboxed.out.find("\"sandboxed_parses\":1}") != std::string::npos);
  CHECK(in_process.out.find("\"sandboxed_parses\":0}") != std::string::npos);
}

TEST_CASE("mamori scan --json prints one object per finding and a summary") {
  TempDir dir;
  dir.Write("eicar.com", Eicar());
  Run r = Mamori("scan --json --no-cache" + kSigs + dir.path());
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("{\"type\":\"finding\"") != std::string::npos);
  CHECK(r.out.find("\"engine\":\"yara\"") != std::string::npos);
  CHECK(r.out.find("\"engine\":\"hash\"") != std::string::npos);
  CHECK(r.out.find("{\"type\":\"summary\",\"files\":1,") != std::string::npos);
  CHECK(r.out.find("SCAN SUMMARY") == std::string::npos);
}

TEST_CASE("mamori scan exits 2 on a missing path and on a bad signature file") {
  Run missing = Mamori("scan --no-cache" + kSigs + "/nonexistent/mamori-path");
  CHECK(missing.exit_code == 2);
  TempDir dir;
  dir.Write("sigs/bad.yar", "rule X {\n condition: nope\n}\n");
  Run bad = Mamori("scan --no-cache --signatures " + dir.path() + "/sigs " + dir.path());
  CHECK(bad.exit_code == 2);
  Run usage = Mamori("scan --bogus-flag x");
  CHECK(usage.exit_code == 64);
}

TEST_CASE("mamori scan answers a rescan from the verdict cache after a restart") {
  TempDir dir;
  for (int i = 0; i < 10; ++i) dir.Write("f" + std::to_string(i), "clean " + std::to_string(i));
  std::string cache = " --cache-file " + dir.path() + "/../" + std::filesystem::path(dir.path()).filename().string() +
                      ".cache ";
  Run first = Mamori("scan --json" + cache + kSigs + dir.path());
  CHECK(first.out.find("\"cached\":0,") != std::string::npos);
  Run second = Mamori("scan --json" + cache + kSigs + dir.path());
  CHECK(second.out.find("\"files\":10,") != std::string::npos);
  CHECK(second.out.find("\"cached\":10,") != std::string::npos);
  std::filesystem::remove(dir.path() + "/../" + std::filesystem::path(dir.path()).filename().string() + ".cache");
}

TEST_CASE("mamori scan --json keeps invalid UTF-8 file names valid JSON") {
  TempDir dir;
  dir.Write("bad\xff" "name.com", Eicar());
  Run r = Mamori("scan --json --no-cache" + kSigs + dir.path());
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("bad\\\\xffname.com") != std::string::npos);
  CHECK(r.out.find("\xff") == std::string::npos);
}

}  // namespace

namespace {

TEST_CASE("mamori scan --signatures BUNDLE verifies it with --pubkey and detects with it") {
  TempDir dir;
  dir.Write("src/yara/eicar.yar",
            "rule Bundle_EICAR { strings: $e = \"X5O!P%@AP[4\\\\PZX54(P^)7CC)7}$EICAR\" condition: $e at 0 }\n");
  std::string sig = MAMORI_SIG_BINARY;
  std::string k = dir.path() + "/pub";
  REQUIRE(std::system((sig + " keygen " + k + " > /dev/null").c_str()) == 0);
  REQUIRE(std::system((sig + " build " + dir.path() + "/src -o " + dir.path() + "/s.mbundle --version 1 --key " + k +
                       ".key > /dev/null").c_str()) == 0);
  dir.Write("scan/e.com", Eicar());
  Run ok = Mamori("scan --no-cache --signatures " + dir.path() + "/s.mbundle --pubkey " + k + ".pub " + dir.path() +
                  "/scan");
  CHECK(ok.exit_code == 1);
  CHECK(ok.out.find("Bundle_EICAR FOUND") != std::string::npos);
  // Another publisher's key: refused, nothing scanned.
  REQUIRE(std::system((sig + " keygen " + dir.path() + "/other > /dev/null").c_str()) == 0);
  Run refused = Mamori("scan --no-cache --signatures " + dir.path() + "/s.mbundle --pubkey " + dir.path() +
                       "/other.pub " + dir.path() + "/scan");
  CHECK(refused.exit_code == 2);
}

}  // namespace
