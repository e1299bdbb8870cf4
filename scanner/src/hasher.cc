#include "mamori/scanner/hasher.h"

#include <openssl/evp.h>

#include <cassert>

#include "mamori/common/file_util.h"

namespace mamori::scanner {

size_t DigestLength(DigestKind kind) {
  switch (kind) {
    case DigestKind::kMd5: return 16;
    case DigestKind::kSha1: return 20;
    case DigestKind::kSha256: return 32;
  }
  return 0;
}

std::string_view DigestName(DigestKind kind) {
  switch (kind) {
    case DigestKind::kMd5: return "md5";
    case DigestKind::kSha1: return "sha1";
    case DigestKind::kSha256: return "sha256";
  }
  return "?";
}

std::string_view Digests::bytes(DigestKind k) const {
  assert(has(k));
  switch (k) {
    case DigestKind::kMd5: return {reinterpret_cast<const char*>(md5.data()), md5.size()};
    case DigestKind::kSha1: return {reinterpret_cast<const char*>(sha1.data()), sha1.size()};
    case DigestKind::kSha256: return {reinterpret_cast<const char*>(sha256.data()), sha256.size()};
  }
  return {};
}

std::string Digests::hex(DigestKind k) const { return has(k) ? HexEncode(bytes(k)) : std::string(); }

struct Hasher::Impl {
  // Fetched once: EVP_MD_fetch avoids the implicit per-call lookup of EVP_sha256().
  EVP_MD* md[kDigestKindCount] = {};
  EVP_MD_CTX* ctx[kDigestKindCount] = {};
  DigestMask kinds = 0;

  Impl() {
    md[0] = EVP_MD_fetch(nullptr, "MD5", nullptr);
    md[1] = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    md[2] = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    for (auto& c : ctx) c = EVP_MD_CTX_new();
  }
  ~Impl() {
    for (auto* c : ctx) EVP_MD_CTX_free(c);
    for (auto* m : md) EVP_MD_free(m);
  }
};

Hasher::Hasher(DigestMask kinds) : impl_(std::make_unique<Impl>()) { Reset(kinds); }
Hasher::~Hasher() = default;

void Hasher::Reset(DigestMask kinds) {
  kinds |= DigestBit(DigestKind::kSha256);
  impl_->kinds = kinds;
  for (int i = 0; i < kDigestKindCount; ++i) {
    // MD5 may be missing under a FIPS-only provider: then it is simply not computed.
    if ((kinds & (1u << i)) && impl_->md[i] != nullptr) EVP_DigestInit_ex(impl_->ctx[i], impl_->md[i], nullptr);
  }
}

void Hasher::Update(std::string_view data) {
  for (int i = 0; i < kDigestKindCount; ++i) {
    if ((impl_->kinds & (1u << i)) && impl_->md[i] != nullptr) EVP_DigestUpdate(impl_->ctx[i], data.data(), data.size());
  }
}

Digests Hasher::Finish() {
  Digests d;
  unsigned int len = 0;
  unsigned char* out[kDigestKindCount] = {d.md5.data(), d.sha1.data(), d.sha256.data()};
  for (int i = 0; i < kDigestKindCount; ++i) {
    if ((impl_->kinds & (1u << i)) && impl_->md[i] != nullptr) {
      EVP_DigestFinal_ex(impl_->ctx[i], out[i], &len);
      d.present |= static_cast<DigestMask>(1u << i);
    }
  }
  impl_->kinds = 0;
  return d;
}

Digests Hasher::Of(std::string_view data, DigestMask kinds) {
  Hasher h(kinds);
  h.Update(data);
  return h.Finish();
}

}  // namespace mamori::scanner
