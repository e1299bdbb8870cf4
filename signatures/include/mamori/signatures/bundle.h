// Signature bundles: one signed, versioned file carrying hash DBs, YARA
// sources, behavior rules (carried opaquely) and an allow-list.
//
// Container: a gzip-compressed POSIX tar (libarchive). Members, in order:
//   manifest        text, grammar in docs/signature-bundles.md
//   manifest.sig    64-byte Ed25519 signature over "mamori-bundle-manifest-v1\n" + manifest
//   hashes/...      *.mhdb/*.hdb/*.hsb hash lists
//   yara/...        *.yar/*.yara sources
//   allowlist/...   *.allow
//   behavior/...    anything (for the behavior monitor; not interpreted here)
// The signature covers the manifest; the manifest lists every part with its
// size and SHA-256. Reading verifies the signature before any part is parsed.
//
// Thread safety: free functions, no shared state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/scanner/signature_set.h"
#include "mamori/signatures/keys.h"

namespace mamori::signatures {

inline constexpr int kBundleFormat = 1;

struct ManifestPart {
  std::string path;    // "hashes/feed.mhdb"
  uint64_t size = 0;
  std::string sha256;  // hex
};

struct Manifest {
  int format = kBundleFormat;
  uint64_t version = 0;        // monotonically increasing per publisher
  std::string created;         // RFC 3339, UTC
  std::string key_id;          // publisher key id
  std::vector<ManifestPart> parts;  // sorted by path

  std::string Serialize() const;
  // Strict: every line must follow the grammar; errors name the line.
  static Result<Manifest> Parse(std::string_view text);
};

// A bundle whose signature, manifest and parts have all been checked.
struct VerifiedBundle {
  Manifest manifest;
  std::vector<scanner::SignaturePart> parts;  // in manifest order, path + bytes
};

struct ReadOptions {
  // Refuse bundles whose version is <= this (the version in use). 0 = accept any.
  uint64_t min_exclusive_version = 0;
  uint64_t max_member_bytes = 1ull << 30;
  uint64_t max_total_bytes = 4ull << 30;
};

// Reads and verifies `path` against `trusted`. Errors (all INVALID_ARGUMENT or
// PERMISSION_DENIED / FAILED_PRECONDITION, each naming the cause): corrupt or
// truncated file, unsafe member name, missing manifest or signature, unknown
// key id, bad signature, unsupported format, downgrade/replay, part missing,
// unlisted member, size or digest mismatch.
Result<VerifiedBundle> ReadBundle(const std::string& path, const TrustedKeys& trusted, const ReadOptions& options = {});

// Reads a bundle's manifest without verifying anything (for `inspect`/`diff`
// of bundles whose key is not at hand). Never use the result to scan.
Result<Manifest> ReadManifestUnverified(const std::string& path);

// Reads, verifies and compiles: the signature set of a bundle.
Result<std::shared_ptr<const scanner::SignatureSet>> LoadBundle(const std::string& path, const TrustedKeys& trusted,
                                                                const ReadOptions& options = {});

// True for a signature bundle file name ("*.mbundle").
bool IsBundlePath(const std::string& path);

// Loads signatures from `paths`: either exactly one bundle, verified against
// the public keys in `trusted_key_files` and newer than
// `min_exclusive_version`, or signature folders and files (scanner::LoadSignatures).
// A bundle mixed with other sources, or a bundle with no trusted key, is refused.
Result<std::shared_ptr<const scanner::SignatureSet>> LoadSignatureSources(
    const std::vector<std::string>& paths, const std::vector<std::string>& trusted_key_files,
    uint64_t min_exclusive_version = 0);

struct BuildOptions {
  uint64_t version = 0;
  bool strict = false;  // refuse YARA rules that draw slow-scan warnings
};

struct BuildReport {
  Manifest manifest;
  std::vector<scanner::YaraWarning> warnings;
  size_t hash_count = 0;
  size_t rule_count = 0;
  size_t allow_count = 0;
  size_t behavior_files = 0;
};

// Builds a bundle from a directory laid out as above (hashes/, yara/,
// allowlist/, behavior/). Everything is validated first (hash lines parsed,
// YARA compiled): a bundle that would not load is never written. The output
// is written atomically.
Result<BuildReport> BuildBundle(const std::string& dir, const std::string& out_path, const PrivateKey& key,
                                const BuildOptions& options);

}  // namespace mamori::signatures
