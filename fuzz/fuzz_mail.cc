// Fuzzes the MIME/mbox/uuencode decoder directly (deeper than through the scanner).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mail.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)mamori::scanner::internal::LooksLikeMail(in);
  mamori::scanner::internal::MailLimits limits;
  limits.max_parts = 500;
  limits.max_total_bytes = 8 << 20;
  auto r = mamori::scanner::internal::ParseMail(in, limits);
  size_t total = 0;
  for (const auto& p : r.parts) total += p.data.size();
  if (total > limits.max_total_bytes || r.parts.size() > limits.max_parts) __builtin_trap();  // limits must hold
  return 0;
}
