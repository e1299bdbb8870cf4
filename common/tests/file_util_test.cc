#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "mamori/common/file_util.h"

namespace mamori {
namespace {

std::string TempDir() {
  std::string t = "/tmp/mamori-common-XXXXXX";
  REQUIRE(::mkdtemp(t.data()) != nullptr);
  return t;
}

TEST_CASE("WriteFileAtomically replaces content and sets the mode") {
  std::string dir = TempDir();
  std::string p = dir + "/f";
  REQUIRE(WriteFileAtomically(p, "one").ok());
  REQUIRE(WriteFileAtomically(p, "two", 0640).ok());
  auto r = ReadFileToString(p);
  REQUIRE(r.ok());
  CHECK(*r == "two");
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("ReadFileToString names the missing path") {
  auto r = ReadFileToString("/nonexistent/mamori/x");
  REQUIRE(!r.ok());
  CHECK(r.status().code() == StatusCode::kNotFound);
  CHECK(r.status().message().find("/nonexistent/mamori/x") != std::string::npos);
}

TEST_CASE("MakeDirs creates parents and HexEncode/HexDecode round-trip") {
  std::string dir = TempDir();
  REQUIRE(MakeDirs(dir + "/a/b/c").ok());
  struct stat st {};
  CHECK(::stat((dir + "/a/b/c").c_str(), &st) == 0);
  std::string bytes;
  REQUIRE(HexDecode(HexEncode("\x01\xab"), &bytes));
  CHECK(bytes == "\x01\xab");
  CHECK(!HexDecode("0g", &bytes));
  CHECK(!HexDecode("abc", &bytes));
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace mamori
