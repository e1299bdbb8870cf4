// The behavior monitor's event model: what every sensor produces (eBPF, proc
// connector, replay, null), what the process table enriches with context, and
// what the rules engine matches Sigma fields against.
//
// One Event type for every kind, owning its strings, so a sensor can hand an
// event across threads and a test can build one in a line. Fields that do not
// apply to a kind stay empty/zero; `type` says which ones are meaningful.
//
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::behavior {

enum class EventType : uint8_t {
  kExec,           // a process image was executed (Sigma process_creation)
  kFork,           // a new process (tgid) was created by fork/clone
  kExit,           // a process (tgid) exited; exit_code set
  kFileOpenWrite,  // an existing file opened for writing (Sigma file_event)
  kFileCreate,     // a file was created (Sigma file_event)
  kFileRename,     // source_filename -> target_filename (Sigma file_event, file_rename)
  kFileUnlink,     // target_filename removed (Sigma file_delete)
  kFileChmod,      // target_filename mode changed to `mode` (Sigma file_change)
  kFileChown,      // target_filename owner changed to owner_uid:owner_gid (file_change)
  kNetConnect,     // outbound connect (Sigma network_connection, Initiated=true)
  kNetAccept,      // inbound connection accepted (network_connection, Initiated=false)
  kNetBind,        // a socket bound to source_ip:source_port
  kSetUid,         // the process changed its uid to new_id
  kSetGid,         // the process changed its gid to new_id
  kModuleLoad,     // a kernel module was loaded (module_name)
  kPtrace,         // the process ptrace()d target_pid with ptrace_request
  kSensorDrops,    // the sensor lost `dropped` events (drop_source says where)
};
inline constexpr int kEventTypeCount = static_cast<int>(EventType::kSensorDrops) + 1;

// "exec", "fork", "exit", "file_open_write", "file_create", "file_rename",
// "file_unlink", "file_chmod", "file_chown", "net_connect", "net_accept",
// "net_bind", "setuid", "setgid", "module_load", "ptrace", "sensor_drops".
std::string_view EventTypeName(EventType t);
std::optional<EventType> EventTypeFromName(std::string_view name);

// Who did it. Filled partly by the sensor (pid, tid, uids, image, argv for
// exec) and completed by the process table (user, parent, sha256, cwd...).
struct ProcessContext {
  int32_t pid = 0;   // thread group id (what ps calls PID)
  int32_t tid = 0;   // the acting thread
  int32_t ppid = 0;  // parent's tgid
  uint32_t uid = 0;  // real uid
  uint32_t euid = 0;
  uint32_t gid = 0;
  uint32_t egid = 0;
  std::string user;                // name of uid ("" if unknown), Sigma User
  std::string image;               // absolute exe path, Sigma Image
  std::vector<std::string> argv;   // full argument vector as executed
  std::string command_line;        // argv joined by ' ', Sigma CommandLine
  std::string cwd;                 // Sigma CurrentDirectory
  std::string tty;                 // "pts/3", "" when none
  std::string cgroup;              // cgroup v2 path, "" when unknown
  uint64_t start_time_ns = 0;      // CLOCK_REALTIME ns when the process started
  std::string sha256;              // hex SHA-256 of image, "" until known

  bool known() const { return pid != 0; }
};

struct Event {
  EventType type = EventType::kExec;
  uint64_t timestamp_ns = 0;  // CLOCK_REALTIME ns
  ProcessContext process;     // the actor
  ProcessContext parent;      // the actor's parent (filled by the process table)

  // File events.
  std::string target_filename;  // Sigma TargetFilename (rename: the new path)
  std::string source_filename;  // rename: the old path
  uint32_t mode = 0;            // chmod: new mode; create: creation mode
  uint32_t owner_uid = 0;       // chown
  uint32_t owner_gid = 0;       // chown

  // Network events. Addresses are printed forms ("127.0.0.1", "::1").
  std::string protocol;  // "tcp" | "udp"
  std::string source_ip;
  uint16_t source_port = 0;
  std::string destination_ip;
  uint16_t destination_port = 0;
  std::string destination_hostname;  // when known (rarely at the socket layer)
  bool initiated = false;            // Sigma Initiated: true for connect

  int32_t exit_code = 0;     // exit: the status as wait() would decode (code or 128+signal)
  uint32_t new_id = 0;       // setuid/setgid
  std::string module_name;   // module_load
  int32_t target_pid = 0;    // ptrace
  int64_t ptrace_request = 0;
  uint64_t dropped = 0;      // sensor_drops: events lost since the last report
  std::string drop_source;   // sensor_drops: "ringbuf", "queue", "rate_limit", ...
};

// argv joined by single spaces: the CommandLine every sensor reports.
std::string JoinArgv(const std::vector<std::string>& argv);

// Replay format: one JSON object per line, keys as in EventToJson. Unknown keys
// are rejected (a typo in a test fixture must not silently match nothing).
std::string EventToJson(const Event& e);
// Errors name the offending key (JSON syntax errors: the column).
Result<Event> EventFromJson(std::string_view line);

}  // namespace mamori::behavior
