// Behavior event lines (replay files; the same JSON reader serves other line
// formats): any input either parses or is refused, and a parsed event renders
// back to JSON that parses to the same rendering.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mamori/behavior/event.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto e = mamori::behavior::EventFromJson(text);
  if (!e.ok()) return 0;
  std::string once = mamori::behavior::EventToJson(*e);
  auto again = mamori::behavior::EventFromJson(once);
  if (!again.ok()) std::abort();  // we must read what we write
  if (mamori::behavior::EventToJson(*again) != once) std::abort();
  return 0;
}
