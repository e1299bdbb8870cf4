#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"
#include "mamori/scanner/scanner.h"
#include "test_util.h"

namespace mamori::scanner {
namespace {

using testing::Eicar;
using testing::MakeArchive;
using testing::TempDir;
using testing::TestSignatures;

std::unique_ptr<Scanner> MakeScanner(std::shared_ptr<const SignatureSet> sigs = TestSignatures(), ScanOptions o = {}) {
  auto s = Scanner::Create(std::move(sigs), o);
  REQUIRE(s.ok());
  return std::move(*s);
}

bool HasFinding(const ScanReport& r, const std::string& object, const std::string& signature) {
  for (const auto& f : r.findings) {
    if (f.object == object && f.signature == signature) return true;
  }
  return false;
}

bool HasIncomplete(const ScanReport& r, const std::string& prefix) {
  for (const auto& i : r.incomplete) {
    if (i.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// A harmless file whose SHA-256 the test adds to the signature set.
const std::string kHarmless = "harmless sample payload: the test lists its sha256 as a signature\n";

std::shared_ptr<const SignatureSet> SigsWithHarmless() {
  return TestSignatures({Hasher::Of(kHarmless).hex(DigestKind::kSha256) + ":*:Test.Harmless.ByHash"});
}

TEST_CASE("EICAR as a plain file is found by hash and by YARA") {
  TempDir dir;
  std::string p = dir.Write("eicar.com", Eicar());
  auto r = MakeScanner()->ScanFile(p);
  CHECK(r.verdict == Verdict::kFound);
  CHECK(HasFinding(r, p, "Test.EICAR.Hash"));
  CHECK(HasFinding(r, p, "Test_EICAR"));
  CHECK(r.sha256 == Hasher::Of(Eicar()).hex(DigestKind::kSha256));
}

TEST_CASE("A clean file is clean") {
  TempDir dir;
  auto r = MakeScanner()->ScanFile(dir.Write("a.txt", "just text\n"));
  CHECK(r.verdict == Verdict::kClean);
  CHECK(r.findings.empty());
  CHECK(r.incomplete.empty());
}

TEST_CASE("EICAR in a zip is found with the path inside") {
  TempDir dir;
  std::string p = dir.Write("a.zip", MakeArchive("zip", {{"readme.txt", "hi"}, {"dir/eicar.com", Eicar()}}));
  auto r = MakeScanner()->ScanFile(p);
  CHECK(r.verdict == Verdict::kFound);
  CHECK(HasFinding(r, p + "!dir/eicar.com", "Test_EICAR"));
  CHECK(HasFinding(r, p + "!dir/eicar.com", "Test.EICAR.Hash"));
}

TEST_CASE("EICAR in a tar.gz inside a zip is found through both levels") {
  TempDir dir;
  std::string tgz = MakeArchive("tar", {{"x/evil.elf", Eicar()}}, "gzip");
  std::string p = dir.Write("outer.zip", MakeArchive("zip", {{"inner.tar.gz", tgz}}));
  auto r = MakeScanner()->ScanFile(p);
  CHECK(r.verdict == Verdict::kFound);
  CHECK(HasFinding(r, p + "!inner.tar.gz!x/evil.elf", "Test_EICAR"));
}

TEST_CASE("Every compressed tar flavor and single-stream compressor is opened") {
  auto scanner = MakeScanner();
  for (std::string filter : {"gzip", "bzip2", "xz", "zstd"}) {
    DYNAMIC_SECTION("tar + " << filter) {
      auto r = scanner->ScanBuffer(MakeArchive("tar", {{"e.com", Eicar()}}, filter), "t.tar.x");
      CHECK(HasFinding(r, "t.tar.x!e.com", "Test_EICAR"));
    }
    DYNAMIC_SECTION("single stream " << filter) {
      auto r = scanner->ScanBuffer(testing::MakeCompressed(filter, Eicar()), "eicar.com.z");
      CHECK(HasFinding(r, "eicar.com.z!eicar.com", "Test_EICAR"));
    }
  }
}

TEST_CASE("A harmless file listed by hash is found, also inside a 7z and a cpio") {
  auto scanner = MakeScanner(SigsWithHarmless());
  auto plain = scanner->ScanBuffer(kHarmless, "h.txt");
  CHECK(HasFinding(plain, "h.txt", "Test.Harmless.ByHash"));
  auto sevenz = scanner->ScanBuffer(MakeArchive("7zip", {{"a/h.txt", kHarmless}}), "s.7z");
  CHECK(HasFinding(sevenz, "s.7z!a/h.txt", "Test.Harmless.ByHash"));
  for (std::string fmt : {"cpio", "cpio-odc"}) {
    auto cpio = scanner->ScanBuffer(MakeArchive(fmt, {{"h.txt", kHarmless}}), "c.cpio");
    CHECK(HasFinding(cpio, "c.cpio!h.txt", "Test.Harmless.ByHash"));
  }
  auto ar = scanner->ScanBuffer(MakeArchive("ar", {{"h.txt", kHarmless}}), "x.a");
  CHECK(HasFinding(ar, "x.a!h.txt", "Test.Harmless.ByHash"));
}

TEST_CASE("ISO 9660 images, xar archives and zip64 are opened") {
  auto scanner = MakeScanner();
  for (std::string fmt : {"iso9660", "xar", "zip64"}) {
    DYNAMIC_SECTION(fmt) {
      auto r = scanner->ScanBuffer(MakeArchive(fmt, {{"dir/e.com", Eicar()}}), "image");
      CHECK(r.verdict == Verdict::kFound);
      bool inside = false;
      for (const auto& f : r.findings) inside = inside || f.object.rfind("image!", 0) == 0;
      CHECK(inside);
    }
  }
}

TEST_CASE("A deb-like ar holding a tar.xz is opened through both levels") {
  std::string data_tar = MakeArchive("tar", {{"./usr/bin/tool", Eicar()}}, "xz");
  std::string deb = MakeArchive("ar", {{"debian-binary", "2.0\n"}, {"data.tar.xz", data_tar}});
  auto r = MakeScanner()->ScanBuffer(deb, "pkg.deb");
  CHECK(HasFinding(r, "pkg.deb!data.tar.xz!./usr/bin/tool", "Test_EICAR"));
}

TEST_CASE("EICAR as a base64 mail attachment is found") {
  std::string b64 = "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNU\n"
                    "LUZJTEUhJEgrSCo=\n";
  std::string mail =
      "From: a@example.org\r\nTo: b@example.org\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n"
      "--XYZ\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
      "--XYZ\r\nContent-Type: application/octet-stream; name=\"invoice.exe\"\r\n"
      "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"invoice.exe\"\r\n\r\n" +
      b64 + "--XYZ--\r\n";
  TempDir dir;
  std::string p = dir.Write("m.eml", mail);
  auto r = MakeScanner()->ScanFile(p);
  CHECK(r.verdict == Verdict::kFound);
  CHECK(HasFinding(r, p + "!invoice.exe", "Test_EICAR"));
}

TEST_CASE("EICAR as a uuencoded message in an mbox is found") {
  // uuencode of the 68-byte EICAR string, generated at run time.
  std::string e = Eicar();
  std::string uu = "begin 644 eicar.com\n";
  for (size_t off = 0; off < e.size(); off += 45) {
    std::string chunk = e.substr(off, 45);
    uu += static_cast<char>(32 + chunk.size());
    for (size_t i = 0; i < chunk.size(); i += 3) {
      unsigned char b[3] = {0, 0, 0};
      for (size_t k = 0; k < 3 && i + k < chunk.size(); ++k) b[k] = static_cast<unsigned char>(chunk[i + k]);
      unsigned v[4] = {static_cast<unsigned>(b[0] >> 2), static_cast<unsigned>(((b[0] & 3) << 4) | (b[1] >> 4)),
                       static_cast<unsigned>(((b[1] & 15) << 2) | (b[2] >> 6)), static_cast<unsigned>(b[2] & 63)};
      for (unsigned x : v) uu += static_cast<char>(x == 0 ? '`' : 32 + x);
    }
    uu += "\n";
  }
  uu += "`\nend\n";
  std::string mbox = "From alice@example.org Mon Jan  1 00:00:00 2024\nFrom: alice@example.org\n"
                     "To: bob@example.org\nSubject: one\n\nhello\n\n"
                     "From mallory@example.org Mon Jan  1 00:00:01 2024\nFrom: mallory@example.org\n"
                     "To: bob@example.org\nSubject: two\n\nhere it is\n" + uu + "\n";
  TempDir dir;
  std::string p = dir.Write("inbox.mbox", mbox);
  auto r = MakeScanner()->ScanFile(p);
  CHECK(r.verdict == Verdict::kFound);
  bool found_uu = false;
  for (const auto& f : r.findings) {
    if (f.signature == "Test_EICAR" && f.object.find("eicar.com") != std::string::npos) found_uu = true;
  }
  CHECK(found_uu);
}

TEST_CASE("A zip bomb ends incomplete in bounded time and memory") {
  // 256 MiB of zeros per member, 2 members: compresses to well under 1 MB.
  std::string zeros(256u << 20, '\0');
  std::string big;
  {
    testing::Members m;
    for (int i = 0; i < 2; ++i) m.push_back({"zeros" + std::to_string(i), zeros});
    big = MakeArchive("zip", m);
  }
  std::string().swap(zeros);
  INFO("bomb size " << big.size());
  auto start = std::chrono::steady_clock::now();
  auto r = MakeScanner()->ScanBuffer(big, "bomb.zip");
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK(HasIncomplete(r, "ratio"));
  CHECK(elapsed < std::chrono::seconds(20));
}

TEST_CASE("Nesting 30 deep stops at the depth limit as incomplete") {
  std::string data = "innermost clean text";
  for (int i = 0; i < 30; ++i) data = MakeArchive("zip", {{"l" + std::to_string(i) + ".zip", data}});
  auto start = std::chrono::steady_clock::now();
  auto r = MakeScanner()->ScanBuffer(data, "deep.zip");
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK(HasIncomplete(r, "depth"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
}

TEST_CASE("Limits: member count, member size and total size are reported, never clean") {
  ScanOptions o;
  SECTION("member count") {
    o.limits.max_members = 3;
    testing::Members m;
    for (int i = 0; i < 10; ++i) m.push_back({"f" + std::to_string(i), "x"});
    auto r = MakeScanner(TestSignatures(), o)->ScanBuffer(MakeArchive("zip", m), "many.zip");
    CHECK(r.verdict == Verdict::kIncomplete);
    CHECK(HasIncomplete(r, "member-count"));
  }
  SECTION("member size: the prefix is still scanned") {
    o.limits.max_member_size = 100;
    auto r = MakeScanner(TestSignatures(), o)
                 ->ScanBuffer(MakeArchive("tar", {{"big", Eicar() + std::string(1000, 'A')}}), "b.tar");
    CHECK(HasIncomplete(r, "member-size"));
    CHECK(HasFinding(r, "b.tar!big", "Test_EICAR"));
    CHECK(r.verdict == Verdict::kFound);
  }
  SECTION("total size") {
    o.limits.max_total_extracted = 1000;
    auto r = MakeScanner(TestSignatures(), o)
                 ->ScanBuffer(MakeArchive("tar", {{"a", std::string(800, 'a')}, {"b", std::string(800, 'b')}}), "t.tar");
    CHECK(r.verdict == Verdict::kIncomplete);
    CHECK(HasIncomplete(r, "total-size"));
  }
}

TEST_CASE("Truncated and corrupt archives end incomplete or with an error, never crash") {
  auto scanner = MakeScanner();
  std::string zip = MakeArchive("zip", {{"a.txt", std::string(5000, 'a')}, {"e.com", Eicar()}});
  std::string tgz = MakeArchive("tar", {{"a.txt", std::string(50000, 'q')}}, "gzip");
  std::string sevenz = MakeArchive("7zip", {{"a.txt", std::string(5000, 'a')}});
  for (const std::string* sample : {&zip, &tgz, &sevenz}) {
    for (size_t cut : {size_t{10}, sample->size() / 3, sample->size() / 2, sample->size() - 5}) {
      auto r = scanner->ScanBuffer(sample->substr(0, cut), "cut");
      CHECK(r.verdict != Verdict::kClean);
    }
    std::string flipped = *sample;
    for (size_t i = 40; i < flipped.size(); i += 97) flipped[i] = static_cast<char>(flipped[i] ^ 0x5A);
    auto r = scanner->ScanBuffer(flipped, "flipped");
    (void)r;  // any verdict is fine; it must only not crash or hang
  }
  // Intact input stays clean — the checks above are about damage.
  CHECK(scanner->ScanBuffer(tgz, "ok.tgz").verdict == Verdict::kClean);
}

TEST_CASE("An encrypted zip member is reported as encrypted") {
  std::string zip = MakeArchive("zip", {{"secret.bin", "top secret"}}, "", "infected");
  auto r = MakeScanner()->ScanBuffer(zip, "enc.zip");
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK(HasIncomplete(r, "encrypted"));
}

TEST_CASE("Scanning a file that is shorter than its stat size does not crash") {
  TempDir dir;
  std::string p = dir.Write("shrunk", Eicar());
  int fd = ::open(p.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  REQUIRE(::truncate(p.c_str(), 10) == 0);  // truncated under the scanner
  auto r = MakeScanner()->ScanFd(fd, st, p);
  ::close(fd);
  CHECK(r.size == 10);
  CHECK(r.verdict == Verdict::kClean);
}

TEST_CASE("Big files are hashed whole, YARA-scanned through the file, and their archives streamed") {
  ScanOptions o;
  o.limits.max_in_memory = 4096;
  TempDir dir;
  std::string filler(20000, 'z');
  std::string p = dir.Write("big.tar", MakeArchive("tar", {{"pad", filler}, {"e.com", Eicar()}}));
  auto r = MakeScanner(TestSignatures(), o)->ScanFile(p);
  CHECK(HasFinding(r, p + "!e.com", "Test_EICAR"));
  CHECK(r.incomplete.empty());
  // YARA sees the whole big file, not a prefix.
  std::string tail_marker = dir.Write("big-eicar.bin", std::string(20000, 'q') + Eicar());
  testing::TempDir rules;
  rules.Write("r/tail.yar", "rule Tail { strings: $e = \"EICAR-STANDARD\" condition: $e }\n");
  auto tail_sigs = LoadSignatureDir(rules.path() + "/r");
  REQUIRE(tail_sigs.ok());
  auto rt = MakeScanner(*tail_sigs, o)->ScanFile(tail_marker);
  CHECK(HasFinding(rt, tail_marker, "Tail"));

  std::string whole = kHarmless + std::string(10000, 'p');
  auto sigs = TestSignatures({Hasher::Of(whole).hex(DigestKind::kSha256) + ":*:Big.ByHash"});
  std::string q = dir.Write("big.bin", whole);
  auto r2 = MakeScanner(sigs, o)->ScanFile(q);
  CHECK(HasFinding(r2, q, "Big.ByHash"));
}

TEST_CASE("Size prefilter skips hashing when no sized signature can match") {
  auto sized = TestSignatures();  // its only hash signature is sized (68 bytes)
  ScanOptions on;
  auto r = MakeScanner(sized, on)->ScanBuffer(std::string(100, 'n'), "n");
  CHECK(r.sha256.empty());
  ScanOptions off;
  off.size_prefilter = false;
  auto r2 = MakeScanner(sized, off)->ScanBuffer(std::string(100, 'n'), "n");
  CHECK(r2.sha256.size() == 64);
}

TEST_CASE("ScanFile refuses a FIFO without blocking") {
  TempDir dir;
  std::string p = dir.path() + "/fifo";
  REQUIRE(::mkfifo(p.c_str(), 0600) == 0);
  auto r = MakeScanner()->ScanFile(p);
  CHECK(r.verdict == Verdict::kError);
  CHECK(r.error.find("not a regular file") != std::string::npos);
}

}  // namespace
}  // namespace mamori::scanner

namespace mamori::scanner {
namespace {

TEST_CASE("With containers and mail turned off, archives are scanned as plain bytes and not reported incomplete") {
  ScanOptions o;
  o.open_containers = false;
  o.open_mail = false;
  auto scanner = MakeScanner(TestSignatures(), o);
  auto zip = scanner->ScanBuffer(MakeArchive("zip", {{"e.com", Eicar()}}, "", "secret"), "enc.zip");
  CHECK(zip.verdict == Verdict::kClean);
  CHECK(zip.incomplete.empty());
  // Stored (uncompressed) tar members are still visible to plain-byte matching.
  auto tar = scanner->ScanBuffer(MakeArchive("tar", {{"e.com", Eicar()}}), "t.tar");
  CHECK(tar.findings.size() == 0);  // the rule anchors EICAR at offset 0 of an object
}

}  // namespace
}  // namespace mamori::scanner

namespace mamori::scanner {
namespace {

TEST_CASE("Mail parts decoded before a mail limit are still scanned") {
  std::string mail = "From: a@example.org\nTo: b@example.org\nSubject: s\nMIME-Version: 1.0\n"
                     "Content-Type: multipart/mixed; boundary=B\n\n";
  mail += "--B\nContent-Type: application/octet-stream; name=\"e.com\"\n\n" + Eicar() + "\n";
  for (int i = 0; i < 20; ++i) mail += "--B\nContent-Type: text/plain\n\npart " + std::to_string(i) + "\n";
  mail += "--B--\n";
  ScanOptions o;
  o.limits.max_members = 5;
  auto r = MakeScanner(TestSignatures(), o)->ScanBuffer(mail, "m.eml");
  CHECK(HasIncomplete(r, "member-count"));
  CHECK(HasFinding(r, "m.eml!e.com", "Test.EICAR.Hash"));  // the newline before a boundary belongs to it
  CHECK(HasFinding(r, "m.eml!e.com", "Test_EICAR"));
}

}  // namespace
}  // namespace mamori::scanner
