// One-pass multi-digest hashing with OpenSSL EVP. SHA-256 is always computed;
// MD5 and SHA-1 only when asked (signatures that use them are loaded).
//
// Thread safety: a Hasher is used by one thread at a time. Cheap to Reset() and
// reuse; keep one per worker.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "mamori/common/status.h"

namespace mamori::scanner {

enum class DigestKind : uint8_t { kMd5 = 0, kSha1 = 1, kSha256 = 2 };
inline constexpr int kDigestKindCount = 3;

// Byte length of a digest kind: 16, 20, 32.
size_t DigestLength(DigestKind kind);
std::string_view DigestName(DigestKind kind);  // "md5", "sha1", "sha256"

// Set of digest kinds as a bit mask (1 << DigestKind).
using DigestMask = uint8_t;
inline constexpr DigestMask DigestBit(DigestKind k) { return static_cast<DigestMask>(1u << static_cast<unsigned>(k)); }

struct Digests {
  DigestMask present = 0;
  std::array<unsigned char, 16> md5{};
  std::array<unsigned char, 20> sha1{};
  std::array<unsigned char, 32> sha256{};

  bool has(DigestKind k) const { return (present & DigestBit(k)) != 0; }
  // The raw bytes of digest `k`. REQUIRES: has(k).
  std::string_view bytes(DigestKind k) const;
  std::string hex(DigestKind k) const;
};

class Hasher {
 public:
  // `kinds` must include SHA-256 (it is added if missing).
  explicit Hasher(DigestMask kinds = DigestBit(DigestKind::kSha256));
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  // Starts a new message, possibly with a different set of digests.
  void Reset(DigestMask kinds);
  void Update(std::string_view data);
  Digests Finish();

  // Convenience: digests of one buffer.
  static Digests Of(std::string_view data, DigestMask kinds = DigestBit(DigestKind::kSha256));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::scanner
