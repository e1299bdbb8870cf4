#include "mamori/scanner/signature_set.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"

namespace mamori::scanner {
namespace {

// Bumped whenever the engine's interpretation of signatures changes, so that
// verdict caches from an older engine are not trusted.
constexpr std::string_view kEngineFormat = "mamori-engine-2";

Status CollectFiles(const std::string& root, std::vector<std::string>* out) {
  std::error_code ec;
  auto st = std::filesystem::status(root, ec);
  if (ec) return NotFoundError("signatures: " + root + ": " + ec.message());
  if (std::filesystem::is_regular_file(st)) {
    if (SignatureFileTypeOf(root) == SignatureFileType::kNone) {
      return InvalidArgumentError("signatures: " + root +
                                  ": unknown signature file type (expected .mhdb, .hdb, .hsb, .hsh, .yar, .yara, "
                                  ".allow)");
    }
    out->push_back(root);
    return Status::Ok();
  }
  if (!std::filesystem::is_directory(st)) return InvalidArgumentError("signatures: " + root + ": not a file or directory");
  std::vector<std::string> found;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && SignatureFileTypeOf(it->path().string()) != SignatureFileType::kNone) {
      found.push_back(it->path().string());
    }
  }
  if (ec) return NotFoundError("signatures: reading " + root + ": " + ec.message());
  // A stable order makes the version independent of directory order.
  std::sort(found.begin(), found.end());
  out->insert(out->end(), found.begin(), found.end());
  return Status::Ok();
}

// Accumulates parts, then compiles. Any error refuses the whole set.
class SetBuilder {
 public:
  SetBuilder(uint64_t bundle_version, std::string publisher) : set_(std::make_shared<SignatureSet>()) {
    set_->bundle_version = bundle_version;
    set_->publisher_key_id = std::move(publisher);
    version_.Update(kEngineFormat);
    std::string v = std::to_string(bundle_version);
    version_.Update(v);
    version_.Update(std::string_view("\0", 1));
  }

  Status AddText(const std::string& name, std::string_view text) {
    Account(name, Hasher::Of(text).bytes(DigestKind::kSha256));
    switch (SignatureFileTypeOf(name)) {
      case SignatureFileType::kHashes: return set_->hashes.LoadText(text, name);
      case SignatureFileType::kAllow: return set_->allow.LoadText(text, name);
      case SignatureFileType::kYara: {
        std::string stem = std::filesystem::path(name).stem().string();
        yara_.push_back(YaraSource{name, std::string(text), stem});
        return Status::Ok();
      }
      case SignatureFileType::kNone: break;
    }
    return InvalidArgumentError("signatures: " + name + ": unknown signature file type");
  }

  Status AddFile(const std::string& path) {
    if (SignatureFileTypeOf(path) == SignatureFileType::kHashes) {
      // Streamed: a million-line list is never held whole in memory.
      std::string content_sha256;
      MAMORI_RETURN_IF_ERROR(set_->hashes.LoadFile(path, &content_sha256));
      Account(path, content_sha256);
      return Status::Ok();
    }
    auto text = ReadFileToString(path);
    if (!text.ok()) return text.status().WithContext("signatures");
    return AddText(path, *text);
  }

  Result<std::shared_ptr<const SignatureSet>> Finish() {
    set_->hashes.Finalize();
    if (!yara_.empty()) {
      auto rules = YaraRules::Compile(yara_);
      if (!rules.ok()) return rules.status();
      set_->yara = std::move(*rules);
    }
    set_->version = version_.Finish().hex(DigestKind::kSha256);
    return std::shared_ptr<const SignatureSet>(std::move(set_));
  }

 private:
  void Account(const std::string& name, std::string_view content_sha256) {
    version_.Update(std::filesystem::path(name).filename().string());
    version_.Update(std::string_view("\0", 1));
    version_.Update(content_sha256);
    set_->files.push_back(name);
  }

  std::shared_ptr<SignatureSet> set_;
  Hasher version_;
  std::vector<YaraSource> yara_;
};

}  // namespace

SignatureFileType SignatureFileTypeOf(const std::string& name) {
  std::string ext = std::filesystem::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".mhdb" || ext == ".hdb" || ext == ".hsb" || ext == ".hsh") return SignatureFileType::kHashes;
  if (ext == ".yar" || ext == ".yara") return SignatureFileType::kYara;
  if (ext == ".allow") return SignatureFileType::kAllow;
  return SignatureFileType::kNone;
}

Result<std::shared_ptr<const SignatureSet>> LoadSignatures(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& p : paths) MAMORI_RETURN_IF_ERROR(CollectFiles(p, &files));
  if (files.empty()) return NotFoundError("signatures: no signature files found");
  SetBuilder builder(0, "");
  for (const std::string& path : files) MAMORI_RETURN_IF_ERROR(builder.AddFile(path));
  return builder.Finish();
}

Result<std::shared_ptr<const SignatureSet>> LoadSignatureDir(const std::string& dir) { return LoadSignatures({dir}); }

Result<std::shared_ptr<const SignatureSet>> BuildSignatureSet(const std::vector<SignaturePart>& parts,
                                                             uint64_t bundle_version,
                                                             const std::string& publisher_key_id) {
  SetBuilder builder(bundle_version, publisher_key_id);
  for (const auto& part : parts) {
    if (SignatureFileTypeOf(part.name) == SignatureFileType::kNone) continue;  // e.g. behavior rules: not ours
    MAMORI_RETURN_IF_ERROR(builder.AddText(part.name, part.content));
  }
  return builder.Finish();
}

}  // namespace mamori::scanner
