// Fuzzes the bundle reader before the signature check: arbitrary bytes as a
// bundle file must be refused cleanly (never loaded: no key signed them).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "mamori/signatures/bundle.h"

namespace {

struct Env {
  std::string dir;
  mamori::signatures::TrustedKeys keys;
  Env() {
    char tmpl[] = "/tmp/mamori-fuzz-bundle-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) __builtin_trap();
    dir = tmpl;
    auto key = mamori::signatures::PrivateKey::Generate(dir + "/k.key", dir + "/k.pub");
    if (!key.ok()) __builtin_trap();
    keys.Add(key->public_key());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env env;
  const std::string path = env.dir + "/input.mbundle";
  {
    // A plain write: fsync per input would cap the fuzzer at tens of runs a second.
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  auto r = mamori::signatures::ReadBundle(path, env.keys);
  if (r.ok()) __builtin_trap();  // nothing the fuzzer makes can carry a valid signature
  (void)mamori::signatures::ReadManifestUnverified(path);
  return 0;
}
