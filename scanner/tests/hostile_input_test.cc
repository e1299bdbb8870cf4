// Hostile inputs: what an attacker would hand a scanner running as root.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "mamori/scanner/parser_pool.h"
#include "mamori/scanner/scanner.h"
#include "test_util.h"

namespace mamori::scanner {
namespace {

using testing::Eicar;
using testing::MakeArchive;

std::unique_ptr<Scanner> Make(ScanOptions o = {}) {
  auto s = Scanner::Create(testing::TestSignatures(), o);
  REQUIRE(s.ok());
  return std::move(*s);
}

bool HasIncomplete(const ScanReport& r, const std::string& prefix) {
  for (const auto& i : r.incomplete) {
    if (i.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// --- Zip bombs written byte by byte (nothing committed, nothing extracted) ---

// A raw deflate block sequence that expands to `mib` MiB of 'a': one 1 MiB
// chunk compressed with a full flush (so it references nothing before it)
// repeated, then an empty final fixed-Huffman block. Sets *crc_out to the
// CRC-32 of the expanded bytes.
std::string DeflateKernel(uint64_t mib, uint32_t* crc_out) {
  std::string plain(1u << 20, 'a');
  z_stream z{};
  REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string chunk(deflateBound(&z, plain.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(plain.data());
  z.avail_in = static_cast<uInt>(plain.size());
  z.next_out = reinterpret_cast<Bytef*>(chunk.data());
  z.avail_out = static_cast<uInt>(chunk.size());
  REQUIRE(deflate(&z, Z_FULL_FLUSH) == Z_OK);
  REQUIRE(z.avail_in == 0);
  chunk.resize(chunk.size() - z.avail_out);
  deflateEnd(&z);
  const uLong chunk_crc = crc32(0, reinterpret_cast<const Bytef*>(plain.data()), static_cast<uInt>(plain.size()));
  std::string out;
  uLong crc = 0;
  for (uint64_t i = 0; i < mib; ++i) {
    out += chunk;
    crc = crc32_combine(crc, chunk_crc, static_cast<z_off_t>(plain.size()));
  }
  out += std::string("\x03\x00", 2);  // BFINAL=1, fixed Huffman, end-of-block
  *crc_out = static_cast<uint32_t>(crc);
  return out;
}

struct ZipEntry {
  std::string name;
  uint32_t crc = 0;
  uint32_t compressed = 0;
  uint32_t uncompressed = 0;
  uint32_t offset = 0;  // of the local file header
};

void Put16(std::string& s, uint32_t v) { s += static_cast<char>(v & 0xff), s += static_cast<char>((v >> 8) & 0xff); }
void Put32(std::string& s, uint32_t v) { Put16(s, v & 0xffff), Put16(s, v >> 16); }

std::string LocalHeader(const ZipEntry& e) {
  std::string h = "PK\x03\x04";
  Put16(h, 20), Put16(h, 0), Put16(h, 8), Put16(h, 0), Put16(h, 0x21);  // version, flags, deflate, time, date
  Put32(h, e.crc), Put32(h, e.compressed), Put32(h, e.uncompressed);
  Put16(h, static_cast<uint32_t>(e.name.size())), Put16(h, 0);
  return h + e.name;
}

std::string CentralDirectory(const std::vector<ZipEntry>& entries, uint32_t cd_offset) {
  std::string cd;
  for (const auto& e : entries) {
    cd += "PK\x01\x02";
    Put16(cd, 20), Put16(cd, 20), Put16(cd, 0), Put16(cd, 8), Put16(cd, 0), Put16(cd, 0x21);
    Put32(cd, e.crc), Put32(cd, e.compressed), Put32(cd, e.uncompressed);
    Put16(cd, static_cast<uint32_t>(e.name.size())), Put16(cd, 0), Put16(cd, 0), Put16(cd, 0), Put16(cd, 0);
    Put32(cd, 0), Put32(cd, e.offset);
    cd += e.name;
  }
  const auto cd_size = static_cast<uint32_t>(cd.size());
  cd += "PK\x05\x06";
  Put16(cd, 0), Put16(cd, 0), Put16(cd, static_cast<uint32_t>(entries.size())), Put16(cd, static_cast<uint32_t>(entries.size()));
  Put32(cd, cd_size), Put32(cd, cd_offset), Put16(cd, 0);
  return cd;
}

// David Fifield's overlapping-entry bomb ("A better zip bomb", 2019): `files`
// central-directory entries whose data all end in one shared kernel. Entry i's
// data is a stored (uncompressed) deflate block quoting local header i+1, then
// entry i+1's data: local headers are quoted, so every entry is a valid zip
// member, and the output grows with the square of the entry count.
std::string OverlappingZipBomb(int files, uint64_t kernel_mib, uint64_t* total_uncompressed) {
  std::vector<ZipEntry> e(static_cast<size_t>(files));
  uint32_t kernel_crc = 0;
  const std::string kernel = DeflateKernel(kernel_mib, &kernel_crc);
  for (int i = 0; i < files; ++i) e[i].name = "f" + std::to_string(1000 + i) + ".txt";  // all names one length
  // Sizes and CRCs from the last entry backwards: entry i = quote(LFH i+1) + entry i+1.
  e.back().crc = kernel_crc;
  e.back().compressed = static_cast<uint32_t>(kernel.size());
  e.back().uncompressed = static_cast<uint32_t>(kernel_mib << 20);
  for (int i = files - 2; i >= 0; --i) {
    const std::string next = LocalHeader(e[i + 1]);
    const uLong head = crc32(0, reinterpret_cast<const Bytef*>(next.data()), static_cast<uInt>(next.size()));
    e[i].crc = static_cast<uint32_t>(crc32_combine(head, e[i + 1].crc, e[i + 1].uncompressed));
    e[i].compressed = static_cast<uint32_t>(5 + next.size()) + e[i + 1].compressed;
    e[i].uncompressed = static_cast<uint32_t>(next.size()) + e[i + 1].uncompressed;
  }
  std::string zip;
  *total_uncompressed = 0;
  for (int i = 0; i < files; ++i) {
    e[i].offset = static_cast<uint32_t>(zip.size());
    *total_uncompressed += e[i].uncompressed;
    zip += LocalHeader(e[i]);
    if (i + 1 < files) {  // stored block header (BFINAL=0) quoting the next local header
      const auto len = static_cast<uint32_t>(LocalHeader(e[i + 1]).size());
      zip += '\0';
      Put16(zip, len), Put16(zip, ~len & 0xffff);
    }
  }
  zip += kernel;
  return zip + CentralDirectory(e, static_cast<uint32_t>(zip.size()));
}

long MaxRssKiB() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

TEST_CASE("An overlapping-entry zip bomb stops at the container limits in bounded time and memory") {
  uint64_t total = 0;
  std::string zip = OverlappingZipBomb(250, 16, &total);  // 250 entries sharing a 16 MiB kernel
  INFO("bomb size " << zip.size() << " expands to " << total);
  REQUIRE(total > (4000ull << 20));  // ~4 GB from ~20 KB: the quadratic construction is in place
  const long rss_before = MaxRssKiB();
  ScanOptions o;
  SECTION("default limits: the ratio limit trips first") {}
  SECTION("ratio limit lifted: the total-size limit trips") {
    o.limits.max_ratio = 1ull << 40;
    o.limits.max_total_extracted = 64ull << 20;  // lowered from 400 MiB to keep the test quick
  }
  SECTION("ratio and size lifted: the member-count limit trips") {
    o.limits.max_ratio = 1ull << 40;
    o.limits.max_total_extracted = 1ull << 40;
    o.limits.max_members = 5;
  }
  SECTION("ratio and size lifted: the time limit trips") {
    o.limits.max_ratio = 1ull << 40;
    o.limits.max_total_extracted = 1ull << 40;
    o.limits.max_scan_time = std::chrono::seconds(1);
  }
  auto start = std::chrono::steady_clock::now();
  auto r = Make(o)->ScanBuffer(zip, "overlap.zip");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));  // hang guard only
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK(MaxRssKiB() - rss_before < 512 * 1024);
  std::string reasons;
  for (const auto& i : r.incomplete) reasons += i + "; ";
  INFO("incomplete: " << reasons);
  if (o.limits.max_members == 5) {
    CHECK(HasIncomplete(r, "member-count"));
  } else if (o.limits.max_scan_time == std::chrono::seconds(1)) {
    CHECK(HasIncomplete(r, "time"));
  } else if (o.limits.max_total_extracted == 64ull << 20) {
    CHECK(HasIncomplete(r, "total-size"));
  } else {
    CHECK(HasIncomplete(r, "ratio"));
  }
  // The bomb itself parsed cleanly: a limit stopped it, not an error. (Each
  // member's bytes start with the next local header, so the scanner opens
  // them as zips too; those nested copies are truncated: corrupt, correctly.)
  for (const auto& i : r.incomplete) {
    if (i.rfind("corrupt", 0) == 0) CHECK(std::count(i.begin(), i.end(), '!') >= 2);
  }
}

TEST_CASE("A 10 GB sparse file ends incomplete at the time limit, in bounded time and memory") {
  testing::TempDir dir;
  std::string p = dir.path() + "/sparse.img";
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, 10ll << 30) == 0);  // holes only: no disk space used
  ::close(fd);
  ScanOptions o;
  o.limits.max_scan_time = std::chrono::seconds(2);
  auto start = std::chrono::steady_clock::now();
  auto r = Make(o)->ScanFile(p);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(15));
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK(HasIncomplete(r, "time"));
}

TEST_CASE("42.zip-style recursion stops at the member-count or size limits in bounded time") {
  std::string level = MakeArchive("zip", {{"zeros.bin", std::string(1u << 20, '\0')}});
  for (int depth = 0; depth < 4; ++depth) {
    testing::Members copies;
    for (int i = 0; i < 16; ++i) copies.push_back({"l" + std::to_string(depth) + "-" + std::to_string(i) + ".zip", level});
    level = MakeArchive("zip", copies);
  }
  INFO("outer size " << level.size());  // 16^4 = 65,536 leaves of 1 MiB: 64 GiB if fully expanded
  auto start = std::chrono::steady_clock::now();
  auto r = Make()->ScanBuffer(level, "42.zip");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK((HasIncomplete(r, "member-count") || HasIncomplete(r, "total-size") || HasIncomplete(r, "ratio")));
}

TEST_CASE("Zip bombs and 42.zip recursion stop at the same limits inside a parser worker") {
  auto pool = ParserPool::Start({});
  REQUIRE(pool.ok());
  uint64_t total = 0;
  std::string level = MakeArchive("zip", {{"zeros.bin", std::string(1u << 20, '\0')}});
  for (int depth = 0; depth < 3; ++depth) {
    testing::Members copies;
    for (int i = 0; i < 16; ++i) copies.push_back({"l" + std::to_string(depth) + "-" + std::to_string(i) + ".zip", level});
    level = MakeArchive("zip", copies);
  }
  struct Case {
    const char* name;
    std::string bytes;
    ScanLimits limits;
  };
  ScanLimits five_members;
  five_members.max_ratio = 1ull << 40;
  five_members.max_total_extracted = 1ull << 40;
  five_members.max_members = 5;
  ScanLimits small_total;
  small_total.max_total_extracted = 64ull << 20;
  const Case cases[] = {
      {"overlap.zip", OverlappingZipBomb(250, 16, &total), ScanLimits{}},
      {"overlap-members.zip", OverlappingZipBomb(250, 16, &total), five_members},
      {"42.zip", level, ScanLimits{}},
      {"42-small.zip", level, small_total},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    ScanOptions in_process;
    in_process.limits = c.limits;
    ScanOptions sandboxed = in_process;
    sandboxed.parser_pool = *pool;
    auto expected = Make(in_process)->ScanBuffer(c.bytes, c.name);
    auto got = Make(sandboxed)->ScanBuffer(c.bytes, c.name);
    CHECK(got.verdict == Verdict::kIncomplete);
    CHECK(got.incomplete == expected.incomplete);
    CHECK(got.findings.size() == expected.findings.size());
  }
  CHECK((*pool)->stats().workers_lost == 0);
}

TEST_CASE("Member names with ../, absolute paths and control characters are only names: nothing is written") {
  testing::TempDir dir;
  std::string zip = MakeArchive("zip", {{"../../escape.com", Eicar()}, {"/abs/olute.com", Eicar()},
                                        {"new\nline\x01.com", Eicar()}});
  auto r = Make()->ScanBuffer(zip, dir.path() + "/names.zip");
  CHECK(r.verdict == Verdict::kFound);
  bool traversal = false, absolute = false, control = false;
  for (const auto& f : r.findings) {
    traversal = traversal || f.object.find("!../../escape.com") != std::string::npos;
    absolute = absolute || f.object.find("!/abs/olute.com") != std::string::npos;
    control = control || f.object.find("new\nline") != std::string::npos;
  }
  CHECK(traversal);
  CHECK(absolute);
  CHECK(control);
  CHECK(::access((dir.path() + "/../escape.com").c_str(), F_OK) != 0);  // never extracted anywhere
}

TEST_CASE("A YARA rule built to be slow is stopped by the per-file time limit and reported") {
  testing::TempDir dir;
  dir.Write("r/slow.yar",
            "rule Slow { condition: for all i in (0..filesize) : "
            "(for all j in (0..filesize) : (uint8(i) != 0x41 or uint8(j) != 0x42)) }\n");
  auto sigs = LoadSignatureDir(dir.path() + "/r");
  REQUIRE(sigs.ok());
  ScanOptions o;
  o.limits.max_scan_time = std::chrono::seconds(1);
  auto s = Scanner::Create(*sigs, o);
  REQUIRE(s.ok());
  auto start = std::chrono::steady_clock::now();
  auto r = (*s)->ScanBuffer(std::string(8u << 20, 'z'), "slow-bait");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK(HasIncomplete(r, "time"));
}

}  // namespace
}  // namespace mamori::scanner
