#include "acl.h"

#include <aclapi.h>
#include <sddl.h>

#include <cstdio>

#include "win_util.h"

namespace mamori::platform::win {
namespace {

Status WellKnownSid(WELL_KNOWN_SID_TYPE type, BYTE* out, const char* what) {
  DWORD n = SECURITY_MAX_SID_SIZE;
  if (!::CreateWellKnownSid(type, nullptr, out, &n)) return LastError(std::string("CreateWellKnownSid(") + what + ")");
  return Status::Ok();
}

}  // namespace

Status InitRestrictedSd(RestrictedSd* out) {
  MAMORI_RETURN_IF_ERROR(WellKnownSid(WinLocalSystemSid, out->system_sid, "SYSTEM"));
  MAMORI_RETURN_IF_ERROR(WellKnownSid(WinBuiltinAdministratorsSid, out->admins_sid, "Administrators"));
  EXPLICIT_ACCESS_W ea[2] = {};
  PSID who[2] = {out->system_sid, out->admins_sid};
  for (int i = 0; i < 2; ++i) {
    ea[i].grfAccessPermissions = FILE_ALL_ACCESS;
    ea[i].grfAccessMode = SET_ACCESS;
    ea[i].grfInheritance = SUB_CONTAINERS_AND_OBJECTS_INHERIT;
    ea[i].Trustee.TrusteeForm = TRUSTEE_IS_SID;
    ea[i].Trustee.TrusteeType = TRUSTEE_IS_WELL_KNOWN_GROUP;
    ea[i].Trustee.ptstrName = static_cast<LPWSTR>(who[i]);
  }
  PACL acl = nullptr;
  DWORD rc = ::SetEntriesInAclW(2, ea, nullptr, &acl);
  if (rc != ERROR_SUCCESS) return Win32Error(rc, "SetEntriesInAcl");
  out->dacl.reset(acl);
  if (!::InitializeSecurityDescriptor(&out->sd, SECURITY_DESCRIPTOR_REVISION) ||
      !::SetSecurityDescriptorDacl(&out->sd, TRUE, acl, FALSE) ||
      !::SetSecurityDescriptorControl(&out->sd, SE_DACL_PROTECTED, SE_DACL_PROTECTED)) {
    return LastError("security descriptor");
  }
  return Status::Ok();
}

Result<DirAccess> DescribeDacl(const ACL* dacl_in, bool protected_dacl) {
  RestrictedSd want;
  MAMORI_RETURN_IF_ERROR(WellKnownSid(WinLocalSystemSid, want.system_sid, "SYSTEM"));
  MAMORI_RETURN_IF_ERROR(WellKnownSid(WinBuiltinAdministratorsSid, want.admins_sid, "Administrators"));
  auto* dacl = const_cast<ACL*>(dacl_in);
  DirAccess a;
  a.inheritance_off = protected_dacl;
  bool system_full = false, admins_full = false, other = dacl == nullptr;  // NULL DACL: everyone, everything
  for (DWORD i = 0; dacl != nullptr && i < dacl->AceCount; ++i) {
    void* ace = nullptr;
    if (!::GetAce(dacl, i, &ace)) return LastError("read ACE " + std::to_string(i));
    auto* header = static_cast<ACE_HEADER*>(ace);
    PSID sid = nullptr;
    ACCESS_MASK mask = 0;
    const char* type = "OTHER";
    if (header->AceType == ACCESS_ALLOWED_ACE_TYPE) {
      auto* allow = static_cast<ACCESS_ALLOWED_ACE*>(ace);
      sid = &allow->SidStart;
      mask = allow->Mask;
      type = "ALLOW";
    } else if (header->AceType == ACCESS_DENIED_ACE_TYPE) {
      auto* deny = static_cast<ACCESS_DENIED_ACE*>(ace);
      sid = &deny->SidStart;
      mask = deny->Mask;
      type = "DENY";
    }
    std::string sid_text = "?";
    LPWSTR s = nullptr;
    if (sid != nullptr && ::ConvertSidToStringSidW(sid, &s)) {
      sid_text = Utf8(s);
      ::LocalFree(s);
    }
    char m[16];
    std::snprintf(m, sizeof m, "0x%lx", static_cast<unsigned long>(mask));
    a.entries.push_back(std::string(type) + " " + sid_text + " " + m);
    const bool full = (mask & FILE_ALL_ACCESS) == FILE_ALL_ACCESS || (mask & GENERIC_ALL) != 0;
    if (header->AceType == ACCESS_ALLOWED_ACE_TYPE) {
      if (::EqualSid(sid, want.system_sid)) system_full = system_full || full;
      else if (::EqualSid(sid, want.admins_sid)) admins_full = admins_full || full;
      else other = true;
    } else if (header->AceType != ACCESS_DENIED_ACE_TYPE) {
      other = true;  // callback/object ACEs: never ours
    }
  }
  a.restricted = a.inheritance_off && system_full && admins_full && !other;
  return a;
}

}  // namespace mamori::platform::win
