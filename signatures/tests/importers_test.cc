#include <catch2/catch.hpp>

#include "mamori/scanner/hash_db.h"
#include "mamori/signatures/importers.h"
#include "test_util.h"

namespace mamori::signatures {
namespace {

const std::string kMd5 = "44d88612fea8a8f36de82e1278abb02f";
const std::string kSha1 = "3395856ce81f2b7382dee72602f798b642f14140";
const std::string kSha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

bool Skipped(const ImportResult& r, const std::string& where, const std::string& reason_part) {
  for (const auto& s : r.skipped) {
    if (s.where == where && s.reason.find(reason_part) != std::string::npos) return true;
  }
  return false;
}

TEST_CASE("ClamAV .hdb and .hsb import with the expected counts; bad lines are reported with line numbers") {
  testing::TempDir dir;
  std::string hdb = dir.Write("main.hdb", kMd5 + ":68:Eicar-Test-Signature\n" +
                                              "# comment\n" +
                                              "nothex:68:Bad\n" +                       // line 3
                                              kMd5 + ":68:Eicar-Test-Signature\n" +     // line 4 duplicate
                                              kSha256 + ":68:WrongKindInHdb\n" +       // line 5
                                              kMd5.substr(0, 31) + "0:12:Other:73\n"); // line 6, flevel
  std::string hsb = dir.Write("main.hsb", kSha1 + ":68:Sha1.Sig\n" + kSha256 + ":*:Sha256.AnySize:73\n" +
                                              kSha256 + ":abc:BadSize\n" +   // line 3
                                              kSha256 + ":68\n");            // line 4
  ImportResult r;
  REQUIRE(ImportClamav({hdb, hsb}, &r).ok());
  CHECK(r.taken_hashes == 4);
  CHECK(r.skipped.size() == 5);
  CHECK(Skipped(r, hdb + ":3", "not hexadecimal"));
  CHECK(Skipped(r, hdb + ":4", "duplicate"));
  CHECK(Skipped(r, hdb + ":5", "32 hex digits (MD5)"));
  CHECK(Skipped(r, hsb + ":3", "size must be a number"));
  CHECK(Skipped(r, hsb + ":4", "expected HASH:SIZE:NAME"));
  // The output loads into a HashDb as it is.
  scanner::HashDb db;
  REQUIRE(db.LoadText(r.hashes, "imported").ok());
  db.Finalize();
  CHECK(db.size() == 4);
}

TEST_CASE("ClamAV .fp/.sfp become allow-list entries when SHA-256, and say why otherwise") {
  testing::TempDir dir;
  std::string fp = dir.Write("daily.fp", kMd5 + ":68:Legit.Tool\n");
  std::string sfp = dir.Write("daily.sfp", kSha256 + ":68:Legit.Tool2\n");
  ImportResult r;
  REQUIRE(ImportClamav({fp, sfp}, &r).ok());
  CHECK(r.taken_allow == 1);
  CHECK(r.allow.find("sha256:" + kSha256) != std::string::npos);
  CHECK(Skipped(r, fp + ":1", "must be SHA-256"));
  CHECK(!ImportClamav({dir.Write("x.ndb", "")}, &r).ok());
}

TEST_CASE("sha256-list imports plain lists, sha256sum output and abuse.ch style CSV") {
  testing::TempDir dir;
  std::string other = std::string(63, 'a') + "b";
  ImportResult plain;
  REQUIRE(ImportSha256List(dir.Write("feed.txt", "# feed\n" + kSha256 + "\n" + other + "  /tmp/x\n" +
                                                      "zz\n" + kSha256 + "\n"),
                           "Feed", "", &plain)
              .ok());
  CHECK(plain.taken_hashes == 2);
  CHECK(plain.skipped.size() == 2);
  CHECK(plain.hashes.find(kSha256 + ":*:Feed\n") != std::string::npos);

  ImportResult csv;
  std::string text =
      "################\n# MalwareBazaar dump\n"
      "# \"first_seen_utc\",\"sha256_hash\",\"md5_hash\"\n"
      "\"2024-01-01 00:00:00\",\"" + kSha256 + "\",\"" + kMd5 + "\"\n"
      "\"2024-01-02 00:00:00\",\"" + other + "\",\"" + kMd5 + "\"\n"
      "\"2024-01-03 00:00:00\",\"short\",\"x\"\n";
  REQUIRE(ImportSha256List(dir.Write("full.csv", text), "Bazaar", "", &csv).ok());
  CHECK(csv.taken_hashes == 2);
  CHECK(csv.skipped.size() == 1);
  CHECK(csv.skipped[0].where.find(":6") != std::string::npos);

  ImportResult named;
  CHECK(!ImportSha256List(dir.Write("x.csv", "a,b\n1,2\n"), "X", "sha256", &named).ok());
}

}  // namespace
}  // namespace mamori::signatures
