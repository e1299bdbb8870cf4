// Fuzzes the agent's YAML config parser (yaml-cpp exceptions must stop at the
// module boundary) and the control socket's field decoding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "mamori/agent/config.h"
#include "mamori/agent/control.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)mamori::agent::ParseAgentConfig(in, "fuzz.yaml");
  std::string round = mamori::agent::UnescapeField(mamori::agent::EscapeField(in));
  if (round != in) __builtin_trap();  // escaping must be lossless
  return 0;
}
