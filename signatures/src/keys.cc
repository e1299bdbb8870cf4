#include "mamori/signatures/keys.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cerrno>

#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"

namespace mamori::signatures {
namespace {

std::string OpenSslError(std::string_view what) { return std::string(what) + " failed (OpenSSL)"; }

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

Result<std::string> RawPublic(EVP_PKEY* pkey) {
  if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) return InvalidArgumentError("not an Ed25519 key");
  std::string raw(32, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(pkey, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 || len != 32) {
    return InternalError(OpenSslError("EVP_PKEY_get_raw_public_key"));
  }
  return raw;
}

// Writes a new file exclusively (never over an existing key).
Status WriteNew(const std::string& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError(errno, "create " + path);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = ErrnoError(errno, "write " + path);
      ::close(fd);
      ::unlink(path.c_str());
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return ErrnoError(errno, "close " + path);
  return Status::Ok();
}

}  // namespace

std::string KeyIdOf(std::string_view raw_public_key) {
  return scanner::Hasher::Of(raw_public_key).hex(scanner::DigestKind::kSha256).substr(0, 16);
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem, std::string_view source) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!pkey) return InvalidArgumentError(std::string(source) + ": not a PEM public key");
  auto raw = RawPublic(pkey.get());
  if (!raw.ok()) return raw.status().WithContext(source);
  PublicKey k;
  k.raw_ = std::move(*raw);
  k.key_id_ = KeyIdOf(k.raw_);
  return k;
}

Result<PublicKey> PublicKey::Load(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return FromPem(*text, path);
}

bool PublicKey::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != 64 || raw_.size() != 32) return false;
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                           reinterpret_cast<const unsigned char*>(raw_.data()), raw_.size()),
               EVP_PKEY_free);
  if (!pkey) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

Result<PrivateKey> PrivateKey::Generate(const std::string& private_path, const std::string& public_path) {
  EVP_PKEY* raw_key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (raw_key == nullptr) return InternalError(OpenSslError("Ed25519 key generation"));
  PkeyPtr pkey(raw_key, EVP_PKEY_free);
  BioPtr priv(BIO_new(BIO_s_mem()), BIO_free);
  BioPtr pub(BIO_new(BIO_s_mem()), BIO_free);
  if (PEM_write_bio_PrivateKey(priv.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_PUBKEY(pub.get(), pkey.get()) != 1) {
    return InternalError(OpenSslError("PEM encoding"));
  }
  char* p = nullptr;
  long n = BIO_get_mem_data(priv.get(), &p);
  std::string priv_pem(p, static_cast<size_t>(n));
  n = BIO_get_mem_data(pub.get(), &p);
  std::string pub_pem(p, static_cast<size_t>(n));
  MAMORI_RETURN_IF_ERROR(WriteNew(private_path, priv_pem, 0600));
  if (Status s = WriteNew(public_path, pub_pem, 0644); !s.ok()) {
    ::unlink(private_path.c_str());
    return s;
  }
  return Load(private_path);
}

Result<PrivateKey> PrivateKey::Load(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  BioPtr bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())), BIO_free);
  EVP_PKEY* raw_key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (raw_key == nullptr) return InvalidArgumentError(path + ": not a PEM private key");
  PrivateKey k;
  k.pkey_ = std::shared_ptr<void>(raw_key, [](void* v) { EVP_PKEY_free(static_cast<EVP_PKEY*>(v)); });
  auto raw = RawPublic(raw_key);
  if (!raw.ok()) return raw.status().WithContext(path);
  k.public_.raw_ = std::move(*raw);
  k.public_.key_id_ = KeyIdOf(k.public_.raw_);
  return k;
}

Result<std::string> PrivateKey::Sign(std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  auto* pkey = static_cast<EVP_PKEY*>(pkey_.get());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey) != 1) {
    return InternalError(OpenSslError("EVP_DigestSignInit"));
  }
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != 64) {
    return InternalError(OpenSslError("EVP_DigestSign"));
  }
  return sig;
}

void TrustedKeys::Add(PublicKey key) {
  for (const auto& k : keys_) {
    if (k.key_id() == key.key_id()) return;
  }
  keys_.push_back(std::move(key));
}

Status TrustedKeys::AddFile(const std::string& path) {
  auto k = PublicKey::Load(path);
  if (!k.ok()) return k.status();
  Add(std::move(*k));
  return Status::Ok();
}

const PublicKey* TrustedKeys::Find(std::string_view key_id) const {
  for (const auto& k : keys_) {
    if (k.key_id() == key_id) return &k;
  }
  return nullptr;
}

}  // namespace mamori::signatures
