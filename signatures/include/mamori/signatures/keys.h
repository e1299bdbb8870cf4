// Ed25519 publisher keys (OpenSSL 3 EVP).
//
// A key is identified by its key id: the first 8 bytes of SHA-256 over the raw
// 32-byte public key, as 16 lowercase hex digits. Bundles name their signer by
// key id; agents pin trusted public keys.
//
// Thread safety: PrivateKey/PublicKey are immutable after loading and may be
// used from several threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::signatures {

class PublicKey {
 public:
  // PEM (SubjectPublicKeyInfo) text.
  static Result<PublicKey> FromPem(std::string_view pem, std::string_view source);
  static Result<PublicKey> Load(const std::string& path);

  const std::string& key_id() const { return key_id_; }
  const std::string& raw() const { return raw_; }  // 32 bytes
  // True when `signature` is a valid Ed25519 signature of `message`.
  bool Verify(std::string_view message, std::string_view signature) const;

 private:
  friend class PrivateKey;
  std::string raw_;
  std::string key_id_;
};

class PrivateKey {
 public:
  // Creates a new key pair and writes it: private key PEM (PKCS#8) with mode
  // 0600, public key PEM with mode 0644. Refuses to overwrite existing files.
  static Result<PrivateKey> Generate(const std::string& private_path, const std::string& public_path);
  static Result<PrivateKey> Load(const std::string& path);

  const PublicKey& public_key() const { return public_; }
  Result<std::string> Sign(std::string_view message) const;  // 64 bytes

 private:
  std::shared_ptr<void> pkey_;  // EVP_PKEY*
  PublicKey public_;
};

// Key id of a raw 32-byte Ed25519 public key.
std::string KeyIdOf(std::string_view raw_public_key);

// A set of trusted public keys, looked up by key id.
class TrustedKeys {
 public:
  void Add(PublicKey key);
  Status AddFile(const std::string& path);
  const PublicKey* Find(std::string_view key_id) const;
  bool empty() const { return keys_.empty(); }

 private:
  std::vector<PublicKey> keys_;
};

}  // namespace mamori::signatures
