#include "x509.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>

namespace mamori::telemetry::x509 {

namespace {

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509_free>>;
using Req = std::unique_ptr<X509_REQ, Deleter<X509_REQ_free>>;
using CertStore = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;

std::string OpenSslError(const std::string& what) {
  std::string out = what;
  unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += ": ";
    out += buf;
  }
  ERR_clear_error();
  return out;
}

Bio MemoryBio(const std::string& pem) { return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

std::string BioString(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

Result<Key> ReadKey(const std::string& pem) {
  Bio bio = MemoryBio(pem);
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return DataLossError(OpenSslError("agent key is not a PEM private key"));
  return key;
}

Result<Cert> ReadCert(const std::string& pem, const char* what) {
  Bio bio = MemoryBio(pem);
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return DataLossError(OpenSslError(std::string(what) + " is not a PEM certificate"));
  return cert;
}

Result<std::string> CnOf(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return FailedPreconditionError("certificate has no subject CN");
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return FailedPreconditionError("certificate CN is unreadable");
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return cn;
}

}  // namespace

Result<std::string> GenerateKeyPem() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return InternalError(OpenSslError("generating an EC P-256 key"));
  Bio out(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
    return InternalError(OpenSslError("encoding the agent key"));
  }
  return BioString(out.get());
}

Result<std::string> MakeCsrPem(const std::string& key_pem, const std::string& common_name) {
  Result<Key> key = ReadKey(key_pem);
  if (!key.ok()) return key.status();
  Req req(X509_REQ_new());
  if (!req || !X509_REQ_set_version(req.get(), 0)) return InternalError(OpenSslError("CSR"));
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  // The server ignores the subject; keep it to safe characters so any hostname works.
  std::string cn;
  for (char c : common_name) {
    if (cn.size() == 64) break;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-') cn += c;
  }
  if (cn.empty()) cn = "mamori-agent";
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.data()),
                                  static_cast<int>(cn.size()), -1, 0) ||
      !X509_REQ_set_pubkey(req.get(), key->get()) || X509_REQ_sign(req.get(), key->get(), EVP_sha256()) <= 0) {
    return InternalError(OpenSslError("building the CSR"));
  }
  Bio out(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509_REQ(out.get(), req.get())) return InternalError(OpenSslError("encoding the CSR"));
  return BioString(out.get());
}

Result<std::string> CommonName(const std::string& cert_pem) {
  Result<Cert> cert = ReadCert(cert_pem, "certificate");
  if (!cert.ok()) return cert.status();
  return CnOf(cert->get());
}

Result<CertificateInfo> CheckCertificate(const std::string& key_pem, const std::string& cert_pem,
                                         const std::string& ca_pem, int64_t now_ns) {
  Result<Key> key = ReadKey(key_pem);
  if (!key.ok()) return key.status();
  Result<Cert> cert = ReadCert(cert_pem, "agent certificate");
  if (!cert.ok()) return cert.status();
  Result<Cert> ca = ReadCert(ca_pem, "CA certificate");
  if (!ca.ok()) return ca.status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return FailedPreconditionError("the agent certificate is not for the agent key");
  }
  CertStore store(X509_STORE_new());
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca->get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr) != 1) {
    return InternalError(OpenSslError("certificate check"));
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(now_ns / 1'000'000'000));
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return FailedPreconditionError(std::string("the agent certificate does not verify against the CA: ") +
                                   X509_verify_cert_error_string(err));
  }
  Result<std::string> cn = CnOf(cert->get());
  if (!cn.ok()) return cn.status();
  CertificateInfo info;
  info.common_name = *cn;
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert->get()), &tm) == 1) {
    info.not_after_ns = static_cast<int64_t>(timegm(&tm)) * 1'000'000'000;
  }
  tm = {};
  if (ASN1_TIME_to_tm(X509_get0_notBefore(cert->get()), &tm) == 1) {
    info.not_before_ns = static_cast<int64_t>(timegm(&tm)) * 1'000'000'000;
  }
  return info;
}

}  // namespace mamori::telemetry::x509
