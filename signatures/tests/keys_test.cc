#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "mamori/signatures/keys.h"
#include "test_util.h"

namespace mamori::signatures {
namespace {

TEST_CASE("Generated Ed25519 keys sign and verify, and the private key file is 0600") {
  testing::TempDir dir;
  auto key = PrivateKey::Generate(dir.path() + "/k.key", dir.path() + "/k.pub");
  REQUIRE(key.ok());
  struct stat st {};
  REQUIRE(::stat((dir.path() + "/k.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto sig = key->Sign("message");
  REQUIRE(sig.ok());
  CHECK(sig->size() == 64);
  auto pub = PublicKey::Load(dir.path() + "/k.pub");
  REQUIRE(pub.ok());
  CHECK(pub->key_id() == key->public_key().key_id());
  CHECK(pub->key_id().size() == 16);
  CHECK(pub->Verify("message", *sig));
  CHECK(!pub->Verify("messagE", *sig));
  std::string bad = *sig;
  bad[10] ^= 1;
  CHECK(!pub->Verify("message", bad));
}

TEST_CASE("Key generation refuses to overwrite an existing key") {
  testing::TempDir dir;
  REQUIRE(PrivateKey::Generate(dir.path() + "/k.key", dir.path() + "/k.pub").ok());
  auto again = PrivateKey::Generate(dir.path() + "/k.key", dir.path() + "/k2.pub");
  REQUIRE(!again.ok());
  CHECK(again.status().code() == StatusCode::kAlreadyExists);
}

TEST_CASE("Loading a file that is not a key names the file") {
  testing::TempDir dir;
  std::string p = dir.Write("junk.pub", "not a key");
  auto k = PublicKey::Load(p);
  REQUIRE(!k.ok());
  CHECK(k.status().message().find(p) != std::string::npos);
}

}  // namespace
}  // namespace mamori::signatures
