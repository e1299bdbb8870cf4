#include "x509_util.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <cctype>
#include <ctime>

#include "mamori/common/file_util.h"

namespace mamori::server::x509 {
namespace {

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

Result<std::string> BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  if (n <= 0 || data == nullptr) return InternalError("empty PEM output");
  return std::string(data, static_cast<size_t>(n));
}

BioPtr ReadBio(std::string_view pem) { return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

// Adds an extension given in OpenSSL's config syntax (fixed strings only:
// names from outside go through SubjectAltName, never through this parser).
Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return InternalError(std::string("certificate extension ") + value + ": " + OpenSslErrors());
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return InternalError("X509_add_ext: " + OpenSslErrors());
  return Status::Ok();
}

Status AddName(GENERAL_NAMES* names, int type, const std::string& value) {
  GENERAL_NAME* gn = GENERAL_NAME_new();
  if (gn == nullptr) return InternalError("out of memory");
  if (type == GEN_IPADD) {
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(value.c_str());
    if (ip == nullptr) {
      GENERAL_NAME_free(gn);
      ERR_clear_error();
      return InvalidArgumentError("not an IP address: '" + value + "'");
    }
    GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
  } else {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (s == nullptr || ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1) {
      ASN1_IA5STRING_free(s);
      GENERAL_NAME_free(gn);
      return InternalError("out of memory");
    }
    GENERAL_NAME_set0_value(gn, type, s);
  }
  if (sk_GENERAL_NAME_push(names, gn) == 0) {
    GENERAL_NAME_free(gn);
    return InternalError("out of memory");
  }
  return Status::Ok();
}

Status AddSubjectAltName(X509* cert, const CertSpec& spec) {
  if (spec.dns_names.empty() && spec.ip_addresses.empty() && spec.uris.empty()) return Status::Ok();
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  if (names == nullptr) return InternalError("out of memory");
  Status s;
  for (const auto& n : spec.dns_names) {
    if (s.ok()) s = AddName(names, GEN_DNS, n);
  }
  for (const auto& n : spec.ip_addresses) {
    if (s.ok()) s = AddName(names, GEN_IPADD, n);
  }
  for (const auto& n : spec.uris) {
    if (s.ok()) s = AddName(names, GEN_URI, n);
  }
  if (s.ok() && X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) != 1) {
    s = InternalError("subjectAltName: " + OpenSslErrors());
  }
  GENERAL_NAMES_free(names);
  return s;
}

Status SetRandomSerial(X509* cert) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return InternalError("RAND_bytes: " + OpenSslErrors());
  raw[0] &= 0x7f;  // positive
  raw[0] |= 0x40;  // and 16 bytes long
  BIGNUM* bn = BN_bin2bn(raw, sizeof raw, nullptr);
  if (bn == nullptr) return InternalError("out of memory");
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, nullptr);
  BN_free(bn);
  if (serial == nullptr) return InternalError("out of memory");
  const int ok = X509_set_serialNumber(cert, serial);
  ASN1_INTEGER_free(serial);
  return ok == 1 ? Status::Ok() : InternalError("X509_set_serialNumber: " + OpenSslErrors());
}

}  // namespace

std::string OpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

Result<KeyPtr> GenerateEcP256Key() {
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return InternalError("EC P-256 key generation: " + OpenSslErrors());
  return key;
}

Result<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return InternalError("PEM_write_bio_PrivateKey: " + OpenSslErrors());
  }
  return BioText(bio.get());
}

Result<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return InternalError("PEM_write_bio_X509: " + OpenSslErrors());
  return BioText(bio.get());
}

Result<KeyPtr> KeyFromPem(std::string_view pem) {
  BioPtr bio = ReadBio(pem);
  KeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return DataLossError("not a PEM private key: " + OpenSslErrors());
  return key;
}

Result<CertPtr> CertFromPem(std::string_view pem) {
  BioPtr bio = ReadBio(pem);
  CertPtr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return DataLossError("not a PEM certificate: " + OpenSslErrors());
  return cert;
}

Result<ReqPtr> ReqFromPem(std::string_view pem) {
  BioPtr bio = ReadBio(pem);
  ReqPtr req(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!req) {
    ERR_clear_error();
    return InvalidArgumentError("not a PEM certificate signing request (PKCS#10)");
  }
  return req;
}

Result<std::string> Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return InternalError("X509_digest: " + OpenSslErrors());
  return HexEncode(std::string_view(reinterpret_cast<const char*>(md), len));
}

Result<int64_t> NotAfter(X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return DataLossError("bad notAfter");
  return static_cast<int64_t>(timegm(&tm));
}

Result<CertPtr> MakeCertificate(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key) {
  CertPtr cert(X509_new());
  if (!cert) return InternalError("out of memory");
  X509* x = cert.get();
  if (X509_set_version(x, 2) != 1) return InternalError("X509_set_version");
  MAMORI_RETURN_IF_ERROR(SetRandomSerial(x));
  if (ASN1_TIME_set(X509_getm_notBefore(x), static_cast<time_t>(spec.not_before_s)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(x), static_cast<time_t>(spec.not_after_s)) == nullptr) {
    return InternalError("certificate validity: " + OpenSslErrors());
  }
  X509_NAME* name = X509_get_subject_name(x);
  if (!spec.organization.empty() &&
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.organization.c_str()), -1, -1, 0) != 1) {
    return InternalError("subject O: " + OpenSslErrors());
  }
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1, 0) != 1) {
    return InternalError("subject CN: " + OpenSslErrors());
  }
  if (X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name) != 1 ||
      X509_set_pubkey(x, subject_key) != 1) {
    return InternalError("certificate issuer/key: " + OpenSslErrors());
  }
  switch (spec.usage) {
    case CertSpec::Usage::kCa:
      MAMORI_RETURN_IF_ERROR(AddExtension(x, issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
      MAMORI_RETURN_IF_ERROR(AddExtension(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign"));
      break;
    case CertSpec::Usage::kServer:
      MAMORI_RETURN_IF_ERROR(AddExtension(x, issuer, NID_basic_constraints, "critical,CA:FALSE"));
      MAMORI_RETURN_IF_ERROR(AddExtension(x, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment"));
      MAMORI_RETURN_IF_ERROR(AddExtension(x, issuer, NID_ext_key_usage, "serverAuth"));
      break;
    case CertSpec::Usage::kClient:
      MAMORI_RETURN_IF_ERROR(AddExtension(x, issuer, NID_basic_constraints, "critical,CA:FALSE"));
      MAMORI_RETURN_IF_ERROR(AddExtension(x, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment"));
      MAMORI_RETURN_IF_ERROR(AddExtension(x, issuer, NID_ext_key_usage, "clientAuth"));
      break;
  }
  MAMORI_RETURN_IF_ERROR(AddExtension(x, issuer, NID_subject_key_identifier, "hash"));
  MAMORI_RETURN_IF_ERROR(AddExtension(x, issuer, NID_authority_key_identifier, "keyid:always"));
  MAMORI_RETURN_IF_ERROR(AddSubjectAltName(x, spec));
  if (X509_sign(x, issuer_key, EVP_sha256()) <= 0) return InternalError("X509_sign: " + OpenSslErrors());
  return cert;
}

std::string CanonicalIp(const std::string& s) {
  char buf[INET6_ADDRSTRLEN];
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) return inet_ntop(AF_INET, &a4, buf, sizeof buf);
  in6_addr a6{};
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) return inet_ntop(AF_INET6, &a6, buf, sizeof buf);
  return "";
}

std::set<std::string> SubjectAltNames(X509* cert) {
  std::set<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_DNS || gn->type == GEN_URI) {
      const ASN1_IA5STRING* s = gn->type == GEN_DNS ? gn->d.dNSName : gn->d.uniformResourceIdentifier;
      std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                    static_cast<size_t>(ASN1_STRING_length(s)));
      if (gn->type == GEN_DNS) {
        for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        out.insert("dns:" + v);
      } else {
        out.insert("uri:" + v);
      }
    } else if (gn->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
      char buf[INET6_ADDRSTRLEN];
      const int len = ASN1_STRING_length(ip);
      const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
      if (family != 0 && inet_ntop(family, ASN1_STRING_get0_data(ip), buf, sizeof buf) != nullptr) {
        out.insert(std::string("ip:") + buf);
      }
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string CommonName(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return "";
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, s);
  if (len < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace mamori::server::x509
