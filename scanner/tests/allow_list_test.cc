#include <catch2/catch.hpp>

#include "mamori/scanner/allow_list.h"
#include "mamori/scanner/hasher.h"
#include "mamori/scanner/scanner.h"
#include "test_util.h"

namespace mamori::scanner {
namespace {

using testing::Eicar;

TEST_CASE("AllowList parses sha256 and path entries and refuses bad lines whole") {
  AllowList a;
  std::string eicar_hex = Hasher::Of(Eicar()).hex(DigestKind::kSha256);
  REQUIRE(a.LoadText("# fixes\nsha256:" + eicar_hex + "  # vendor test file\npath:/opt/vendor/*\n", "fp.allow").ok());
  CHECK(a.sha256_count() == 1);
  CHECK(a.AllowsSha256(Hasher::Of(Eicar()).bytes(DigestKind::kSha256)));
  CHECK(a.AllowsPath("/opt/vendor/bin/tool"));
  CHECK(!a.AllowsPath("/opt/other/tool"));
  Status s = a.LoadText("sha256:1234\n", "bad.allow");
  CHECK(s.message() == "bad.allow:1: sha256: needs 64 hex digits");
  CHECK(!a.LoadText("path:relative/*\n", "bad.allow").ok());
  CHECK(!a.LoadText("sha1:abc\n", "bad.allow").ok());
  CHECK(a.sha256_count() == 1);
  CHECK(a.glob_count() == 1);
}

TEST_CASE("An allow-listed digest is never reported, at top level or inside an archive") {
  testing::TempDir dir;
  dir.Write("sigs/eicar.yar",
            "rule Test_EICAR { strings: $e = \"X5O!P%@AP[4\\\\PZX54(P^)7CC)7}$EICAR\" condition: $e at 0 }\n");
  dir.Write("sigs/fp.allow", "sha256:" + Hasher::Of(Eicar()).hex(DigestKind::kSha256) + "\n");
  auto sigs = LoadSignatureDir(dir.path() + "/sigs");
  REQUIRE(sigs.ok());
  auto scanner = Scanner::Create(*sigs);
  REQUIRE(scanner.ok());
  auto top = (*scanner)->ScanBuffer(Eicar(), "e.com");
  CHECK(top.verdict == Verdict::kClean);
  CHECK(top.allowed);
  auto inside = (*scanner)->ScanBuffer(testing::MakeArchive("zip", {{"e.com", Eicar()}}), "a.zip");
  CHECK(inside.verdict == Verdict::kClean);
  // Something not on the list is still found.
  auto other = (*scanner)->ScanBuffer(Eicar() + "tail", "x");
  CHECK(other.verdict == Verdict::kFound);
}

TEST_CASE("An allow-listed path glob is not scanned") {
  testing::TempDir dir;
  dir.Write("sigs/eicar.yar",
            "rule Test_EICAR { strings: $e = \"X5O!P%@AP[4\\\\PZX54(P^)7CC)7}$EICAR\" condition: $e at 0 }\n");
  dir.Write("sigs/fp.allow", "path:" + dir.path() + "/vendor/*\n");
  auto sigs = LoadSignatureDir(dir.path() + "/sigs");
  REQUIRE(sigs.ok());
  auto scanner = Scanner::Create(*sigs);
  REQUIRE(scanner.ok());
  auto allowed = (*scanner)->ScanFile(dir.Write("vendor/deep/e.com", Eicar()));
  CHECK(allowed.verdict == Verdict::kClean);
  CHECK(allowed.allowed);
  CHECK((*scanner)->ScanFile(dir.Write("elsewhere/e.com", Eicar())).verdict == Verdict::kFound);
}

}  // namespace
}  // namespace mamori::scanner
