#include "mamori/platform/secure_dir.h"

#include <windows.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "../../windows/acl.h"
#include "test_util.h"

namespace mamori::platform {
namespace {

using testing::MakeDir;
using testing::TempDir;

bool Has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST_CASE("the data dir security descriptor grants SYSTEM and Administrators only and is protected", "[acl]") {
  win::RestrictedSd sd;
  REQUIRE(win::InitRestrictedSd(&sd).ok());
  SECURITY_DESCRIPTOR_CONTROL control = 0;
  DWORD revision = 0;
  REQUIRE(::GetSecurityDescriptorControl(&sd.sd, &control, &revision));
  CHECK((control & SE_DACL_PROTECTED) != 0);
  auto a = win::DescribeDacl(sd.dacl.get(), (control & SE_DACL_PROTECTED) != 0);
  REQUIRE(a.ok());
  INFO("entries: " << Catch::Detail::stringify(a->entries));
  CHECK(a->entries.size() == 2);
  CHECK(Has(a->entries, "ALLOW S-1-5-18 0x1f01ff"));
  CHECK(Has(a->entries, "ALLOW S-1-5-32-544 0x1f01ff"));
  CHECK(a->restricted);
  // Both ACEs pass to subdirectories and files.
  for (DWORD i = 0; i < sd.dacl->AceCount; ++i) {
    void* ace = nullptr;
    REQUIRE(::GetAce(sd.dacl.get(), i, &ace));
    CHECK((static_cast<ACE_HEADER*>(ace)->AceFlags & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE)) ==
          (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE));
  }
}

TEST_CASE("a DACL with another principal or without protection is not restricted", "[acl]") {
  win::RestrictedSd sd;
  REQUIRE(win::InitRestrictedSd(&sd).ok());
  CHECK_FALSE(win::DescribeDacl(sd.dacl.get(), false)->restricted);  // inherits from the parent
  CHECK_FALSE(win::DescribeDacl(nullptr, true)->restricted);          // NULL DACL: everyone
  BYTE everyone[SECURITY_MAX_SID_SIZE];
  DWORD n = sizeof everyone;
  REQUIRE(::CreateWellKnownSid(WinWorldSid, nullptr, everyone, &n));
  std::vector<BYTE> buf(1024);
  auto* acl = reinterpret_cast<ACL*>(buf.data());
  REQUIRE(::InitializeAcl(acl, static_cast<DWORD>(buf.size()), ACL_REVISION));
  REQUIRE(::AddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS, sd.system_sid));
  REQUIRE(::AddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS, sd.admins_sid));
  REQUIRE(::AddAccessAllowedAce(acl, ACL_REVISION, FILE_GENERIC_READ, everyone));
  auto a = win::DescribeDacl(acl, true);
  REQUIRE(a.ok());
  CHECK(Has(a->entries, "ALLOW S-1-1-0 0x120089"));
  CHECK_FALSE(a->restricted);
}

TEST_CASE("restricted dir is created with missing parents and its DACL read back", "[acl]") {
  TempDir t;
  std::string dir = t / "ProgramData\\Mamori\\data";
  REQUIRE(CreateRestrictedDir(dir).ok());
  REQUIRE(testing::Exists(dir));
  auto a = ReadDirAccess(dir);
  REQUIRE(a.ok());
  INFO("entries: " << Catch::Detail::stringify(a->entries));
  CHECK(Has(a->entries, "ALLOW S-1-5-18 0x1f01ff"));
  if (testing::RunningUnderWine()) {
    // Wine 8 accepts SetSecurityInfo on directories but keeps nothing; it
    // reports a DACL made from the Unix mode bits. The read-back must say so.
    WARN("wine does not keep directory ACLs: enforcement untested here (docs/windows.md)");
    CHECK_FALSE(a->restricted);
    return;
  }
  CHECK(a->inheritance_off);
  CHECK(a->entries.size() == 2);
  CHECK(Has(a->entries, "ALLOW S-1-5-32-544 0x1f01ff"));
  CHECK(a->restricted);
}

TEST_CASE("an existing open directory is restricted again", "[acl]") {
  TempDir t;
  std::string dir = t / "data";
  MakeDir(dir);
  auto before = ReadDirAccess(dir);
  REQUIRE(before.ok());
  CHECK_FALSE(before->restricted);
  REQUIRE(CreateRestrictedDir(dir).ok());
  auto after = ReadDirAccess(dir);
  REQUIRE(after.ok());
  if (!testing::RunningUnderWine()) CHECK(after->restricted);
}

TEST_CASE("a file in place of the data dir is refused", "[acl]") {
  TempDir t;
  testing::WriteTestFile(t / "data", "not a dir");
  Status s = CreateRestrictedDir(t / "data");
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(s.message().find(t / "data") != std::string::npos);
}

TEST_CASE("reading the access of a missing dir says not found", "[acl]") {
  TempDir t;
  CHECK(ReadDirAccess(t / "missing").status().code() == StatusCode::kNotFound);
  CHECK(CreateRestrictedDir("").code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mamori::platform
