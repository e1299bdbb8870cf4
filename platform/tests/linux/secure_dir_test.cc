#include "mamori/platform/secure_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "test_util.h"

namespace mamori::platform {
namespace {

using testing::TempDir;

TEST_CASE("restricted dir is created 0700 with missing parents and read back", "[platform]") {
  TempDir t;
  std::string dir = t / "var/lib/mamori";
  REQUIRE(CreateRestrictedDir(dir).ok());
  auto a = ReadDirAccess(dir);
  REQUIRE(a.ok());
  CHECK(a->mode == 0700);
  CHECK(a->owner_uid == ::geteuid());
  CHECK(a->restricted);
}

TEST_CASE("an existing open directory is restricted again", "[platform]") {
  TempDir t;
  std::string dir = t / "data";
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  REQUIRE(::chmod(dir.c_str(), 0777) == 0);
  CHECK_FALSE(ReadDirAccess(dir)->restricted);
  REQUIRE(CreateRestrictedDir(dir).ok());
  CHECK(ReadDirAccess(dir)->mode == 0700);
}

TEST_CASE("a symlink in place of the data dir is refused and its target left alone", "[platform]") {
  TempDir t, target;
  REQUIRE(::chmod(target.path().c_str(), 0755) == 0);
  std::string dir = t / "data";
  REQUIRE(::symlink(target.path().c_str(), dir.c_str()) == 0);
  Status s = CreateRestrictedDir(dir);
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(s.message().find(dir) != std::string::npos);
  struct stat st {};
  REQUIRE(::stat(target.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
}

TEST_CASE("reading the access of a missing dir says not found", "[platform]") {
  TempDir t;
  CHECK(ReadDirAccess(t / "missing").status().code() == StatusCode::kNotFound);
  CHECK(CreateRestrictedDir("").code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mamori::platform
