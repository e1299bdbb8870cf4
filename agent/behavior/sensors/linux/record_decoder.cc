#include "record_decoder.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>

#include "ebpf/abi/mamori_bpf_abi.h"

namespace mamori::behavior::linux_sensors {

// The ABI layout, checked where user space reads it.
static_assert(sizeof(mamori_bpf_str) == 4);
static_assert(sizeof(mamori_bpf_header) == 16);
static_assert(sizeof(mamori_bpf_task) == 64);
static_assert(sizeof(mamori_bpf_exec_body) == 40);
static_assert(sizeof(mamori_bpf_exit_body) == 8);
static_assert(sizeof(mamori_bpf_file_body) == 24);
static_assert(sizeof(mamori_bpf_net_body) == 40);
static_assert(sizeof(mamori_bpf_cred_body) == 8);
static_assert(sizeof(mamori_bpf_ptrace_body) == 16);
static_assert(sizeof(mamori_bpf_module_body) == 8);
static_assert(sizeof(mamori_bpf_record) == 128);
static_assert(sizeof(mamori_bpf_prefix) == 256);
static_assert(sizeof(mamori_bpf_config) == 24 + 16 * 256);
static_assert(offsetof(mamori_bpf_record, body) == 80);
static_assert(offsetof(mamori_bpf_exec_body, cgroup_id) == 32);

namespace {

class Reader {
 public:
  Reader(const uint8_t* data, size_t data_size) : data_(data), size_(data_size) {}
  // False when the string lies outside the data area.
  bool Get(const mamori_bpf_str& s, std::string* out) const {
    if (static_cast<size_t>(s.offset) + s.length > size_) return false;
    out->assign(reinterpret_cast<const char*>(data_) + s.offset, s.length);
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

std::string Address(uint16_t family, const uint8_t* addr) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family == AF_INET) {
    inet_ntop(AF_INET, addr, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, addr, buf, sizeof buf);
  }
  return buf;
}

}  // namespace

int32_t DecodeExitStatus(int32_t raw) {
  if ((raw & 0x7f) == 0) return (raw >> 8) & 0xff;
  return 128 + (raw & 0x7f);
}

std::string TtyDevName(std::string_view name) {
  if (name.size() > 3 && name.substr(0, 3) == "pts" && name[3] != '/') {
    return "pts/" + std::string(name.substr(3));
  }
  return std::string(name);
}

void SplitArgv(std::string_view block, std::vector<std::string>* argv, std::string* command_line) {
  argv->clear();
  command_line->clear();
  if (!block.empty() && block.back() == '\0') block.remove_suffix(1);
  if (block.empty()) return;
  size_t start = 0;
  while (true) {
    size_t end = block.find('\0', start);
    std::string_view arg = block.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    argv->emplace_back(arg);
    if (!command_line->empty() || argv->size() > 1) *command_line += ' ';
    *command_line += arg;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
}

Status DecodeRecord(const void* data, size_t size, int64_t boot_to_realtime_ns, DecodedRecord* out) {
  if (size < sizeof(mamori_bpf_record)) {
    return DataLossError("eBPF record of " + std::to_string(size) + " bytes is shorter than its fixed part");
  }
  mamori_bpf_record rec;
  std::memcpy(&rec, data, sizeof rec);
  if (rec.header.size > size || rec.header.size < sizeof rec) {
    return DataLossError("eBPF record size field " + std::to_string(rec.header.size) + " does not match " +
                         std::to_string(size) + " bytes");
  }
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  Reader strings(bytes + sizeof rec, rec.header.size - sizeof rec);
  auto bad_string = [&](const char* what) {
    return DataLossError(std::string("eBPF record: ") + what + " lies outside the record");
  };

  *out = DecodedRecord();
  out->flags = rec.header.flags;
  Event& e = out->event;
  e.timestamp_ns = rec.header.timestamp_boottime_ns + boot_to_realtime_ns;
  ProcessContext& p = e.process;
  p.pid = rec.task.pid;
  p.tid = rec.task.tid;
  p.ppid = rec.task.ppid;
  p.uid = rec.task.uid;
  p.euid = rec.task.euid;
  p.gid = rec.task.gid;
  p.egid = rec.task.egid;
  if (rec.task.start_boottime_ns != 0) p.start_time_ns = rec.task.start_boottime_ns + boot_to_realtime_ns;

  switch (rec.header.type) {
    case MAMORI_BPF_EXEC: {
      e.type = EventType::kExec;
      const mamori_bpf_exec_body& x = rec.body.exec;
      std::string argv_block, tty;
      if (!strings.Get(x.image, &p.image)) return bad_string("image");
      if (!strings.Get(x.cwd, &p.cwd)) return bad_string("cwd");
      if (!strings.Get(x.tty, &tty)) return bad_string("tty");
      if (!strings.Get(x.cgroup, &p.cgroup)) return bad_string("cgroup");
      if (!strings.Get(x.argv, &argv_block)) return bad_string("argv");
      p.tty = TtyDevName(tty);
      SplitArgv(argv_block, &p.argv, &p.command_line);
      return Status::Ok();
    }
    case MAMORI_BPF_FORK:
      e.type = EventType::kFork;
      return Status::Ok();
    case MAMORI_BPF_EXIT:
      e.type = EventType::kExit;
      e.exit_code = DecodeExitStatus(rec.body.exit.exit_code);
      return Status::Ok();
    case MAMORI_BPF_FILE_OPEN_WRITE:
    case MAMORI_BPF_FILE_CREATE:
    case MAMORI_BPF_FILE_RENAME:
    case MAMORI_BPF_FILE_UNLINK:
    case MAMORI_BPF_FILE_CHMOD:
    case MAMORI_BPF_FILE_CHOWN: {
      static constexpr EventType kTypes[] = {EventType::kFileOpenWrite, EventType::kFileCreate, EventType::kFileRename,
                                             EventType::kFileUnlink,    EventType::kFileChmod,  EventType::kFileChown};
      e.type = kTypes[rec.header.type - MAMORI_BPF_FILE_OPEN_WRITE];
      const mamori_bpf_file_body& f = rec.body.file;
      if (!strings.Get(f.target, &e.target_filename)) return bad_string("target path");
      if (!strings.Get(f.source, &e.source_filename)) return bad_string("source path");
      e.mode = f.mode;
      e.owner_uid = f.owner_uid;
      e.owner_gid = f.owner_gid;
      out->syscall_path = rec.header.type >= MAMORI_BPF_FILE_RENAME;
      return Status::Ok();
    }
    case MAMORI_BPF_NET_CONNECT:
    case MAMORI_BPF_NET_ACCEPT:
    case MAMORI_BPF_NET_BIND: {
      e.type = rec.header.type == MAMORI_BPF_NET_CONNECT  ? EventType::kNetConnect
               : rec.header.type == MAMORI_BPF_NET_ACCEPT ? EventType::kNetAccept
                                                          : EventType::kNetBind;
      const mamori_bpf_net_body& n = rec.body.net;
      if (n.family != AF_INET && n.family != AF_INET6) return DataLossError("eBPF record: unknown address family");
      e.protocol = n.protocol == 6 ? "tcp" : n.protocol == 17 ? "udp" : std::to_string(n.protocol);
      e.source_ip = Address(n.family, n.source_addr);
      e.source_port = n.source_port;
      if (rec.header.type != MAMORI_BPF_NET_BIND) {
        e.destination_ip = Address(n.family, n.destination_addr);
        e.destination_port = n.destination_port;
      }
      e.initiated = rec.header.type == MAMORI_BPF_NET_CONNECT;
      return Status::Ok();
    }
    case MAMORI_BPF_SETUID:
    case MAMORI_BPF_SETGID:
      e.type = rec.header.type == MAMORI_BPF_SETUID ? EventType::kSetUid : EventType::kSetGid;
      e.new_id = rec.body.cred.new_id;
      return Status::Ok();
    case MAMORI_BPF_MODULE_LOAD:
      e.type = EventType::kModuleLoad;
      if (!strings.Get(rec.body.module.name, &e.module_name)) return bad_string("module name");
      return Status::Ok();
    case MAMORI_BPF_PTRACE:
      e.type = EventType::kPtrace;
      e.ptrace_request = rec.body.ptrace.request;
      e.target_pid = rec.body.ptrace.target_pid;
      return Status::Ok();
    default:
      return Status(StatusCode::kUnimplemented, "eBPF record type " + std::to_string(rec.header.type));
  }
}

}  // namespace mamori::behavior::linux_sensors
