// Fuzzes every text format a signature publisher ships: hash lines, allow-lists,
// bundle manifests — and the quarantine record parser, which reads what may be
// a damaged file. Errors are fine; crashes and half-loaded state are not.
#include <cstddef>
#include <cstdint>
#include <string>

#include "mamori/quarantine/vault.h"
#include "mamori/scanner/allow_list.h"
#include "mamori/scanner/hash_db.h"
#include "mamori/signatures/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  mamori::scanner::HashDb db;
  auto s = db.LoadText(in, "fuzz.mhdb");
  db.Finalize();
  if (!s.ok() && db.size() != 0) __builtin_trap();  // a refused file leaves nothing behind
  mamori::scanner::AllowList allow;
  auto a = allow.LoadText(in, "fuzz.allow");
  if (!a.ok() && !allow.empty()) __builtin_trap();
  auto m = mamori::signatures::Manifest::Parse(in);
  if (m.ok()) {
    // What parses must serialize back to the same bytes (one canonical form).
    if (m->Serialize() != in) __builtin_trap();
  }
  (void)mamori::quarantine::ParseRecord(in, "fuzz.rec");
  return 0;
}
