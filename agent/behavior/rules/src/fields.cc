#include "fields.h"

#include <algorithm>
#include <charconv>

namespace mamori::behavior::rules::internal {
namespace {

constexpr CategoryMask kAll = static_cast<CategoryMask>((1u << kCategoryCount) - 1);
constexpr CategoryMask kFiles = MaskOf(Category::kFileEvent) | MaskOf(Category::kFileDelete) |
                                MaskOf(Category::kFileRename) | MaskOf(Category::kFileChange);
constexpr CategoryMask kFileWrites = MaskOf(Category::kFileEvent) | MaskOf(Category::kFileChange);
constexpr CategoryMask kNet = MaskOf(Category::kNetworkConnection);
constexpr CategoryMask kNetOrBind = kNet | MaskOf(Category::kNetworkBind);

constexpr FieldKind S = FieldKind::kString;
constexpr FieldKind N = FieldKind::kNumber;

// Indexed by FieldId.
constexpr std::array<FieldInfo, kFieldCount> kFields = {{
    {"Image", S, kAll},
    {"CommandLine", S, kAll},
    {"ParentImage", S, kAll},
    {"ParentCommandLine", S, kAll},
    {"User", S, kAll},
    {"ParentUser", S, kAll},
    {"CurrentDirectory", S, kAll},
    {"ProcessId", N, kAll},
    {"ParentProcessId", N, kAll},
    {"Hashes", S, kAll},
    {"Sha256", S, kAll},
    {"Tty", S, kAll},
    {"Cgroup", S, kAll},
    {"Uid", N, kAll},
    {"Euid", N, kAll},
    {"Gid", N, kAll},
    {"Egid", N, kAll},
    {"LogonId", N, kAll},
    {"TargetFilename", S, kFiles},
    {"SourceFilename", S, MaskOf(Category::kFileEvent) | MaskOf(Category::kFileRename)},
    {"Action", S, kFiles | MaskOf(Category::kPrivilegeChange)},
    {"Mode", N, kFileWrites},
    {"FileMode", S, kFileWrites},
    {"OwnerUid", N, kFileWrites},
    {"OwnerGid", N, kFileWrites},
    {"DestinationIp", S, kNet},
    {"DestinationPort", N, kNet},
    {"DestinationHostname", S, kNet},
    {"SourceIp", S, kNetOrBind},
    {"SourcePort", N, kNetOrBind},
    {"Initiated", S, kNet},
    {"Protocol", S, kNetOrBind},
    {"ExitCode", N, MaskOf(Category::kProcessExit)},
    {"NewId", N, MaskOf(Category::kPrivilegeChange)},
    {"ModuleName", S, MaskOf(Category::kModuleLoad)},
    {"TargetProcessId", N, MaskOf(Category::kProcessAccess)},
    {"PtraceRequest", N, MaskOf(Category::kProcessAccess)},
}};

constexpr std::array<std::string_view, kCategoryCount> kCategoryNames = {
    "process_creation", "file_event",       "file_delete", "file_rename",    "file_change",  "network_connection",
    "process_exit",     "privilege_change", "module_load", "process_access", "network_bind",
};

// Standard Sigma/Sysmon fields that only Windows (or Sysmon on Windows) fills.
constexpr std::string_view kWindowsFields[] = {"IntegrityLevel",
                                               "ParentIntegrityLevel",
                                               "LogonGuid",
                                               "ProcessGuid",
                                               "ParentProcessGuid",
                                               "OriginalFileName",
                                               "Company",
                                               "Description",
                                               "Product",
                                               "FileVersion",
                                               "TerminalSessionId",
                                               "Imphash",
                                               "Signed",
                                               "Signature",
                                               "SignatureStatus",
                                               "EventID",
                                               "Provider_Name",
                                               "Channel",
                                               "TargetObject",
                                               "Details",
                                               "ImageLoaded",
                                               "GrandParentImage",
                                               "GrandparentCommandLine",
                                               "SubjectUserName",
                                               "SubjectLogonId",
                                               "TargetUserName",
                                               "ServiceName",
                                               "PipeName",
                                               "QueryName",
                                               "QueryResults",
                                               "SourceImage",
                                               "TargetImage",
                                               "GrantedAccess",
                                               "CallTrace",
                                               "StartAddress",
                                               "StartModule",
                                               "Contents",
                                               "Archived",
                                               "IsExecutable",
                                               "DestinationIsIpv6",
                                               "SourceIsIpv6",
                                               "SourceHostname",
                                               "SourcePortName",
                                               "DestinationPortName",
                                               "RuleName",
                                               "UtcTime",
                                               "Computer",
                                               "CreationUtcTime",
                                               "PreviousCreationUtcTime",
                                               "EventType",
                                               "NewName",
                                               "Device",
                                               "Hash",
                                               "ParentProcessName",
                                               "NewProcessName",
                                               "ProcessName",
                                               "ParentLogonId",
                                               "ParentOriginalFileName"};

std::string_view ActionOf(EventType t) {
  switch (t) {
    case EventType::kFileCreate:
      return "create";
    case EventType::kFileOpenWrite:
      return "write";
    case EventType::kFileRename:
      return "rename";
    case EventType::kFileChmod:
      return "chmod";
    case EventType::kFileChown:
      return "chown";
    case EventType::kFileUnlink:
      return "delete";
    case EventType::kSetUid:
      return "setuid";
    case EventType::kSetGid:
      return "setgid";
    default:
      return "";
  }
}

std::string_view Decimal(int64_t v, std::string* buf) {
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof(tmp), v);
  buf->assign(tmp, r.ptr);
  return *buf;
}

}  // namespace

std::optional<Category> CategoryFromName(std::string_view name) {
  for (int i = 0; i < kCategoryCount; ++i) {
    if (kCategoryNames[i] == name) return static_cast<Category>(i);
  }
  return std::nullopt;
}

std::string_view CategoryName(Category c) { return kCategoryNames[static_cast<int>(c)]; }

CategoryMask CategoriesOf(EventType t) {
  switch (t) {
    case EventType::kExec:
      return MaskOf(Category::kProcessCreation);
    case EventType::kFileCreate:
    case EventType::kFileOpenWrite:
      return MaskOf(Category::kFileEvent);
    case EventType::kFileRename:
      return MaskOf(Category::kFileEvent) | MaskOf(Category::kFileRename);
    case EventType::kFileChmod:
    case EventType::kFileChown:
      return MaskOf(Category::kFileEvent) | MaskOf(Category::kFileChange);
    case EventType::kFileUnlink:
      return MaskOf(Category::kFileDelete);
    case EventType::kNetConnect:
    case EventType::kNetAccept:
      return MaskOf(Category::kNetworkConnection);
    case EventType::kNetBind:
      return MaskOf(Category::kNetworkBind);
    case EventType::kExit:
      return MaskOf(Category::kProcessExit);
    case EventType::kSetUid:
    case EventType::kSetGid:
      return MaskOf(Category::kPrivilegeChange);
    case EventType::kModuleLoad:
      return MaskOf(Category::kModuleLoad);
    case EventType::kPtrace:
      return MaskOf(Category::kProcessAccess);
    case EventType::kFork:
    case EventType::kSensorDrops:
      return 0;
  }
  return 0;
}

const FieldInfo& GetFieldInfo(FieldId f) { return kFields[static_cast<int>(f)]; }

std::optional<FieldId> FieldFromName(std::string_view name) {
  for (int i = 0; i < kFieldCount; ++i) {
    if (kFields[i].name == name) return static_cast<FieldId>(i);
  }
  return std::nullopt;
}

std::string FieldRefusal(std::string_view name, Category category) {
  const std::string quoted = "field '" + std::string(name) + "'";
  if (auto f = FieldFromName(name)) {
    return quoted + " is not available in category '" + std::string(CategoryName(category)) + "'";
  }
  for (std::string_view w : kWindowsFields) {
    if (w == name) return quoted + " is not available on Linux";
  }
  const std::string folded = FoldAscii(name);
  for (const FieldInfo& info : kFields) {
    if (FoldAscii(info.name) == folded && (info.categories & MaskOf(category))) {
      return "unknown " + quoted + " (field names are case-sensitive: did you mean '" + std::string(info.name) + "'?)";
    }
  }
  return "unknown " + quoted + " for category '" + std::string(CategoryName(category)) + "'";
}

std::string FoldAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = FoldByte(c);
  return out;
}

int64_t EventView::Number(FieldId f) const {
  const Event& e = *e_;
  switch (f) {
    case FieldId::kProcessId:
      return e.process.pid;
    case FieldId::kParentProcessId:
      return e.process.ppid;
    case FieldId::kUid:
    case FieldId::kLogonId:
      return e.process.uid;
    case FieldId::kEuid:
      return e.process.euid;
    case FieldId::kGid:
      return e.process.gid;
    case FieldId::kEgid:
      return e.process.egid;
    case FieldId::kMode:
      return e.mode;
    case FieldId::kOwnerUid:
      return e.owner_uid;
    case FieldId::kOwnerGid:
      return e.owner_gid;
    case FieldId::kDestinationPort:
      return e.destination_port;
    case FieldId::kSourcePort:
      return e.source_port;
    case FieldId::kExitCode:
      return e.exit_code;
    case FieldId::kNewId:
      return e.new_id;
    case FieldId::kTargetProcessId:
      return e.target_pid;
    case FieldId::kPtraceRequest:
      return e.ptrace_request;
    default:
      return 0;
  }
}

std::string_view EventView::ComputeRaw(FieldId f) {
  const Event& e = *e_;
  std::string* buf = &raw_buf_[static_cast<int>(f)];
  switch (f) {
    case FieldId::kImage:
      return e.process.image;
    case FieldId::kCommandLine:
      return e.process.command_line;
    case FieldId::kParentImage:
      return e.parent.image;
    case FieldId::kParentCommandLine:
      return e.parent.command_line;
    case FieldId::kUser:
      return e.process.user;
    case FieldId::kParentUser:
      return e.parent.user;
    case FieldId::kCurrentDirectory:
      return e.process.cwd;
    case FieldId::kHashes:
      if (e.process.sha256.empty()) return {};
      buf->assign("SHA256=");
      buf->append(e.process.sha256);
      return *buf;
    case FieldId::kSha256:
      return e.process.sha256;
    case FieldId::kTty:
      return e.process.tty;
    case FieldId::kCgroup:
      return e.process.cgroup;
    case FieldId::kTargetFilename:
      return e.target_filename;
    case FieldId::kSourceFilename:
      return e.source_filename;
    case FieldId::kAction:
      return ActionOf(e.type);
    case FieldId::kFileMode: {
      char tmp[16];
      auto r = std::to_chars(tmp, tmp + sizeof(tmp), e.mode & 07777u, 8);
      buf->assign(tmp, r.ptr);
      return *buf;
    }
    case FieldId::kDestinationIp:
      return e.destination_ip;
    case FieldId::kDestinationHostname:
      return e.destination_hostname;
    case FieldId::kSourceIp:
      return e.source_ip;
    case FieldId::kInitiated: {
      bool initiated = e.type == EventType::kNetConnect || (e.type != EventType::kNetAccept && e.initiated);
      return initiated ? "true" : "false";
    }
    case FieldId::kProtocol:
      return e.protocol;
    case FieldId::kModuleName:
      return e.module_name;
    default:
      return Decimal(Number(f), buf);
  }
}

std::string_view EventView::ComputeFolded(FieldId f) {
  std::string_view raw = Raw(f);
  if (std::none_of(raw.begin(), raw.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) return raw;
  std::string& buf = fold_buf_[static_cast<int>(f)];
  buf.assign(raw);
  for (char& c : buf) c = FoldByte(c);
  return buf;
}

}  // namespace mamori::behavior::rules::internal
