#include "mamori/scanner/signature_set.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"

namespace mamori::scanner {
namespace {

// Bumped whenever the engine's interpretation of signatures changes, so that
// verdict caches from an older engine are not trusted.
constexpr std::string_view kEngineFormat = "mamori-engine-1";

enum class SigFileType { kNone, kHashes, kYara };

SigFileType TypeOf(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".mhdb" || ext == ".hdb" || ext == ".hsb" || ext == ".hsh") return SigFileType::kHashes;
  if (ext == ".yar" || ext == ".yara") return SigFileType::kYara;
  return SigFileType::kNone;
}

Status CollectFiles(const std::string& root, std::vector<std::string>* out) {
  std::error_code ec;
  auto st = std::filesystem::status(root, ec);
  if (ec) return NotFoundError("signatures: " + root + ": " + ec.message());
  if (std::filesystem::is_regular_file(st)) {
    if (TypeOf(root) == SigFileType::kNone) {
      return InvalidArgumentError("signatures: " + root +
                                  ": unknown signature file type (expected .mhdb, .hdb, .hsb, .hsh, .yar, .yara)");
    }
    out->push_back(root);
    return Status::Ok();
  }
  if (!std::filesystem::is_directory(st)) return InvalidArgumentError("signatures: " + root + ": not a file or directory");
  std::vector<std::string> found;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && TypeOf(it->path()) != SigFileType::kNone) found.push_back(it->path().string());
  }
  if (ec) return NotFoundError("signatures: reading " + root + ": " + ec.message());
  // A stable order makes the version independent of directory order.
  std::sort(found.begin(), found.end());
  out->insert(out->end(), found.begin(), found.end());
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<const SignatureSet>> LoadSignatures(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths) MAMORI_RETURN_IF_ERROR(CollectFiles(p, &files));
  if (files.empty()) return NotFoundError("signatures: no signature files found");

  auto set = std::make_shared<SignatureSet>();
  Hasher version_hash;
  version_hash.Update(kEngineFormat);
  std::vector<YaraSource> yara_sources;
  for (const std::string& path : files) {
    std::filesystem::path fp(path);
    std::string content_sha256;
    if (TypeOf(fp) == SigFileType::kHashes) {
      // Streamed: a million-line list is never held whole in memory.
      MAMORI_RETURN_IF_ERROR(set->hashes.LoadFile(path, &content_sha256));
    } else {
      auto text = ReadFileToString(path);
      if (!text.ok()) return text.status().WithContext("signatures");
      content_sha256 = std::string(Hasher::Of(*text).bytes(DigestKind::kSha256));
      yara_sources.push_back(YaraSource{path, std::move(*text), fp.stem().string()});
    }
    version_hash.Update(fp.filename().string());
    version_hash.Update(std::string_view("\0", 1));
    version_hash.Update(content_sha256);
    set->files.push_back(path);
  }
  set->hashes.Finalize();
  if (!yara_sources.empty()) {
    auto rules = YaraRules::Compile(yara_sources);
    if (!rules.ok()) return rules.status();
    set->yara = std::move(*rules);
  }
  set->version = version_hash.Finish().hex(DigestKind::kSha256);
  return std::shared_ptr<const SignatureSet>(std::move(set));
}

Result<std::shared_ptr<const SignatureSet>> LoadSignatureDir(const std::string& dir) {
  return LoadSignatures({dir});
}

}  // namespace mamori::scanner
