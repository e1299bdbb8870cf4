#include "test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "mamori/scanner/hasher.h"

namespace mamori::testing {

std::string Eicar() {
  return std::string("X5O!P%@AP[4\\PZX54(P^)7CC)7}") + "$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
}

TempDir::TempDir() {
  std::string t = "/tmp/mamori-test-XXXXXX";
  REQUIRE(::mkdtemp(t.data()) != nullptr);
  path_ = t;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Make everything removable again (tests chmod 000 some files).
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
  }
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& data) const {
  std::filesystem::path p = std::filesystem::path(path_) / name;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  REQUIRE(out.good());
  return p.string();
}

namespace {

void SetFilter(archive* a, const std::string& filter) {
  if (filter.empty()) return;
  int rc = ARCHIVE_OK;
  if (filter == "gzip") rc = archive_write_add_filter_gzip(a);
  else if (filter == "bzip2") rc = archive_write_add_filter_bzip2(a);
  else if (filter == "xz") rc = archive_write_add_filter_xz(a);
  else if (filter == "zstd") rc = archive_write_add_filter_zstd(a);
  else FAIL("unknown filter " << filter);
  REQUIRE(rc == ARCHIVE_OK);
}

std::string Write(archive* a, const Members& members) {
  std::string out;
  out.resize(64u << 20);
  size_t used = 0;
  REQUIRE(archive_write_open_memory(a, out.data(), out.size(), &used) == ARCHIVE_OK);
  for (const auto& [name, data] : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    if (!data.empty()) REQUIRE(archive_write_data(a, data.data(), data.size()) == static_cast<la_ssize_t>(data.size()));
    archive_entry_free(e);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
  out.resize(used);
  out.shrink_to_fit();  // callers keep many archives: not 64 MiB of capacity each
  return out;
}

}  // namespace

std::string MakeArchive(const std::string& format, const Members& members, const std::string& filter,
                        const std::string& zip_passphrase) {
  archive* a = archive_write_new();
  int rc = ARCHIVE_OK;
  if (format == "zip") rc = archive_write_set_format_zip(a);
  else if (format == "7zip") rc = archive_write_set_format_7zip(a);
  else if (format == "tar") rc = archive_write_set_format_pax_restricted(a);
  else if (format == "cpio") rc = archive_write_set_format_cpio_newc(a);
  else if (format == "cpio-odc") rc = archive_write_set_format_cpio_odc(a);
  else if (format == "ar") rc = archive_write_set_format_ar_svr4(a);
  else if (format == "iso9660") rc = archive_write_set_format_iso9660(a);
  else if (format == "xar") rc = archive_write_set_format_xar(a);
  else if (format == "zip64") {
    rc = archive_write_set_format_zip(a);
    if (rc == ARCHIVE_OK) rc = archive_write_set_options(a, "zip:zip64");
  }
  else FAIL("unknown format " << format);
  REQUIRE(rc == ARCHIVE_OK);
  if (!zip_passphrase.empty()) {
    REQUIRE(archive_write_set_options(a, "zip:encryption=zipcrypt") == ARCHIVE_OK);
    REQUIRE(archive_write_set_passphrase(a, zip_passphrase.c_str()) == ARCHIVE_OK);
  }
  SetFilter(a, filter);
  return Write(a, members);
}

std::string MakeCompressed(const std::string& filter, const std::string& data) {
  archive* a = archive_write_new();
  REQUIRE(archive_write_set_format_raw(a) == ARCHIVE_OK);
  SetFilter(a, filter);
  return Write(a, {{"data", data}});
}

CommandResult RunCommand(const std::string& command) {
  FILE* f = ::popen(command.c_str(), "r");
  REQUIRE(f != nullptr);
  CommandResult r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) r.out.append(buf, n);
  int status = ::pclose(f);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::shared_ptr<const scanner::SignatureSet> TestSignatures(const std::vector<std::string>& extra_hash_lines) {
  static TempDir dir_holder;  // removed when the test process exits
  TempDir* dir = &dir_holder;
  static int n = 0;
  std::string sub = "set" + std::to_string(++n);
  dir->Write(sub + "/eicar.yar",
             "rule Test_EICAR : test { meta: description = \"EICAR test file\" "
             "strings: $e = \"X5O!P%@AP[4\\\\PZX54(P^)7CC)7}$EICAR\" condition: $e at 0 }\n");
  std::string hashes = "# test hashes\n";
  hashes += scanner::Hasher::Of(Eicar()).hex(scanner::DigestKind::kSha256) + ":68:Test.EICAR.Hash\n";
  for (const auto& l : extra_hash_lines) hashes += l + "\n";
  dir->Write(sub + "/test.mhdb", hashes);
  auto set = scanner::LoadSignatureDir(dir->path() + "/" + sub);
  REQUIRE(set.ok());
  return *set;
}

}  // namespace mamori::testing
