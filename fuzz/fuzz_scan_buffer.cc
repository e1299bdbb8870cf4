// Fuzzes the one scan path: container walk (libarchive through our limits),
// mail decoding, hashing and YARA over every member.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "mamori/scanner/scanner.h"

namespace {

std::unique_ptr<mamori::scanner::Scanner> MakeScanner() {
  auto sigs = mamori::scanner::BuildSignatureSet(
      {{"yara/f.yar", "rule F { strings: $a = \"MAMORI-FUZZ\" $b = { 7F 45 4C 46 } condition: any of them }"},
       {"hashes/f.mhdb", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f:68:X\n"}},
      0, "");
  if (!sigs.ok()) __builtin_trap();
  mamori::scanner::ScanOptions o;
  // Small limits keep each input cheap; the limit paths are what we want covered.
  o.limits.max_member_size = 1 << 20;
  o.limits.max_total_extracted = 4 << 20;
  o.limits.max_members = 200;
  o.limits.max_depth = 6;
  o.limits.max_scan_time = std::chrono::seconds(5);
  auto s = mamori::scanner::Scanner::Create(*sigs, o);
  if (!s.ok()) __builtin_trap();
  return std::move(*s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto scanner = MakeScanner();
  scanner->ScanBuffer(std::string_view(reinterpret_cast<const char*>(data), size), "input");
  return 0;
}
