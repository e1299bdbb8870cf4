#include <catch2/catch.hpp>

#include "mamori/scanner/hasher.h"

namespace mamori::scanner {
namespace {

TEST_CASE("Hasher computes SHA-256 always and MD5/SHA-1 only when asked") {
  Digests only = Hasher::Of("abc");
  CHECK(only.has(DigestKind::kSha256));
  CHECK(!only.has(DigestKind::kMd5));
  CHECK(!only.has(DigestKind::kSha1));
  CHECK(only.hex(DigestKind::kSha256) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  Digests all = Hasher::Of("abc", DigestBit(DigestKind::kMd5) | DigestBit(DigestKind::kSha1));
  CHECK(all.hex(DigestKind::kMd5) == "900150983cd24fb0d6963f7d28e17f72");
  CHECK(all.hex(DigestKind::kSha1) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(all.hex(DigestKind::kSha256) == only.hex(DigestKind::kSha256));
}

TEST_CASE("Hasher gives the same digest in one update or many, and is reusable after Reset") {
  std::string data(300000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  Hasher h(DigestBit(DigestKind::kSha1));
  for (size_t off = 0; off < data.size(); off += 7919) h.Update(std::string_view(data).substr(off, 7919));
  Digests chunked = h.Finish();
  h.Reset(DigestBit(DigestKind::kSha1));
  h.Update(data);
  Digests whole = h.Finish();
  CHECK(chunked.hex(DigestKind::kSha256) == whole.hex(DigestKind::kSha256));
  CHECK(chunked.hex(DigestKind::kSha1) == whole.hex(DigestKind::kSha1));
}

}  // namespace
}  // namespace mamori::scanner
