// Decoding ring-buffer records, with records built here byte by byte: runs
// without root or BPF, so the ABI is checked on every build machine.
#include "record_decoder.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "ebpf/abi/mamori_bpf_abi.h"
#include "proc_reader.h"

namespace mamori::behavior::linux_sensors {
namespace {

// A record with a data area; Add appends a string and returns its reference.
class RecordBuilder {
 public:
  explicit RecordBuilder(uint16_t type) {
    std::memset(&rec_, 0, sizeof rec_);
    rec_.header.type = type;
    rec_.header.timestamp_boottime_ns = 1000;
    rec_.task.pid = 42;
    rec_.task.tid = 43;
    rec_.task.ppid = 1;
    rec_.task.uid = 1000;
    rec_.task.euid = 0;
    rec_.task.start_boottime_ns = 500;
  }
  mamori_bpf_record& rec() { return rec_; }
  mamori_bpf_str Add(std::string_view s) {
    mamori_bpf_str r{static_cast<uint16_t>(data_.size()), static_cast<uint16_t>(s.size())};
    data_.append(s);
    return r;
  }
  std::string Bytes() {
    rec_.header.size = static_cast<uint32_t>(sizeof rec_ + data_.size());
    std::string out(reinterpret_cast<const char*>(&rec_), sizeof rec_);
    return out + data_;
  }

 private:
  mamori_bpf_record rec_;
  std::string data_;
};

TEST_CASE("record decoder: exec with argv, image, cwd, tty and cgroup") {
  RecordBuilder b(MAMORI_BPF_EXEC);
  b.rec().body.exec.image = b.Add("/usr/bin/curl");
  b.rec().body.exec.cwd = b.Add("/home/u");
  b.rec().body.exec.tty = b.Add("pts3");
  b.rec().body.exec.cgroup = b.Add("/user.slice");
  b.rec().body.exec.argv = b.Add(std::string("curl\0-o\0a b\0", 12));
  std::string bytes = b.Bytes();
  DecodedRecord d;
  REQUIRE(DecodeRecord(bytes.data(), bytes.size(), 10000, &d).ok());
  const Event& e = d.event;
  CHECK(e.type == EventType::kExec);
  CHECK(e.timestamp_ns == 11000);
  CHECK(e.process.pid == 42);
  CHECK(e.process.tid == 43);
  CHECK(e.process.uid == 1000);
  CHECK(e.process.euid == 0);
  CHECK(e.process.start_time_ns == 10500);
  CHECK(e.process.image == "/usr/bin/curl");
  CHECK(e.process.cwd == "/home/u");
  CHECK(e.process.tty == "pts/3");
  CHECK(e.process.cgroup == "/user.slice");
  CHECK(e.process.argv == std::vector<std::string>{"curl", "-o", "a b"});
  CHECK(e.process.command_line == "curl -o a b");
  CHECK(e.process.user.empty());  // the process table's job
}

TEST_CASE("record decoder: a cut argv keeps its partial last argument") {
  std::vector<std::string> argv;
  std::string line;
  SplitArgv(std::string("a\0bb\0cc", 7), &argv, &line);
  CHECK(argv == std::vector<std::string>{"a", "bb", "cc"});
  CHECK(line == "a bb cc");
  SplitArgv(std::string("\0x\0", 3), &argv, &line);
  CHECK(argv == std::vector<std::string>{"", "x"});
  CHECK(line == " x");
  SplitArgv("", &argv, &line);
  CHECK(argv.empty());
}

TEST_CASE("record decoder: exit status is the code, or 128 + signal") {
  CHECK(DecodeExitStatus(3 << 8) == 3);
  CHECK(DecodeExitStatus(0) == 0);
  CHECK(DecodeExitStatus(9) == 137);
  CHECK(DecodeExitStatus(11 | 0x80) == 139);  // core dumped
}

TEST_CASE("record decoder: file, network, credential, ptrace and module records") {
  {
    RecordBuilder b(MAMORI_BPF_FILE_RENAME);
    b.rec().body.file.target = b.Add("/tmp/new");
    b.rec().body.file.source = b.Add("/tmp/old");
    std::string bytes = b.Bytes();
    DecodedRecord d;
    REQUIRE(DecodeRecord(bytes.data(), bytes.size(), 0, &d).ok());
    CHECK(d.event.type == EventType::kFileRename);
    CHECK(d.event.target_filename == "/tmp/new");
    CHECK(d.event.source_filename == "/tmp/old");
    CHECK(d.syscall_path);
  }
  {
    RecordBuilder b(MAMORI_BPF_FILE_CREATE);
    b.rec().body.file.target = b.Add("/tmp/x");
    b.rec().body.file.mode = 0644;
    std::string bytes = b.Bytes();
    DecodedRecord d;
    REQUIRE(DecodeRecord(bytes.data(), bytes.size(), 0, &d).ok());
    CHECK(d.event.type == EventType::kFileCreate);
    CHECK(d.event.mode == 0644);
    CHECK_FALSE(d.syscall_path);
  }
  {
    RecordBuilder b(MAMORI_BPF_NET_CONNECT);
    auto& n = b.rec().body.net;
    n.family = AF_INET6;
    n.protocol = 6;
    n.source_port = 40000;
    n.destination_port = 443;
    inet_pton(AF_INET6, "::1", n.source_addr);
    inet_pton(AF_INET6, "2001:db8::5", n.destination_addr);
    std::string bytes = b.Bytes();
    DecodedRecord d;
    REQUIRE(DecodeRecord(bytes.data(), bytes.size(), 0, &d).ok());
    CHECK(d.event.type == EventType::kNetConnect);
    CHECK(d.event.protocol == "tcp");
    CHECK(d.event.source_ip == "::1");
    CHECK(d.event.destination_ip == "2001:db8::5");
    CHECK(d.event.destination_port == 443);
    CHECK(d.event.initiated);
  }
  {
    RecordBuilder b(MAMORI_BPF_NET_BIND);
    auto& n = b.rec().body.net;
    n.family = AF_INET;
    n.protocol = 17;
    n.source_port = 53;
    inet_pton(AF_INET, "0.0.0.0", n.source_addr);
    std::string bytes = b.Bytes();
    DecodedRecord d;
    REQUIRE(DecodeRecord(bytes.data(), bytes.size(), 0, &d).ok());
    CHECK(d.event.type == EventType::kNetBind);
    CHECK(d.event.protocol == "udp");
    CHECK(d.event.source_ip == "0.0.0.0");
    CHECK(d.event.destination_ip.empty());
    CHECK_FALSE(d.event.initiated);
  }
  {
    RecordBuilder b(MAMORI_BPF_SETUID);
    b.rec().body.cred.new_id = 0;
    std::string bytes = b.Bytes();
    DecodedRecord d;
    REQUIRE(DecodeRecord(bytes.data(), bytes.size(), 0, &d).ok());
    CHECK(d.event.type == EventType::kSetUid);
  }
  {
    RecordBuilder b(MAMORI_BPF_PTRACE);
    b.rec().body.ptrace.request = 16;
    b.rec().body.ptrace.target_pid = 77;
    std::string bytes = b.Bytes();
    DecodedRecord d;
    REQUIRE(DecodeRecord(bytes.data(), bytes.size(), 0, &d).ok());
    CHECK(d.event.type == EventType::kPtrace);
    CHECK(d.event.ptrace_request == 16);
    CHECK(d.event.target_pid == 77);
  }
  {
    RecordBuilder b(MAMORI_BPF_MODULE_LOAD);
    b.rec().body.module.name = b.Add("xfs");
    std::string bytes = b.Bytes();
    DecodedRecord d;
    REQUIRE(DecodeRecord(bytes.data(), bytes.size(), 0, &d).ok());
    CHECK(d.event.type == EventType::kModuleLoad);
    CHECK(d.event.module_name == "xfs");
  }
}

TEST_CASE("record decoder: damaged records are kDataLoss, unknown types kUnimplemented") {
  DecodedRecord d;
  RecordBuilder b(MAMORI_BPF_EXEC);
  b.rec().body.exec.image = b.Add("/bin/x");
  std::string bytes = b.Bytes();
  CHECK(DecodeRecord(bytes.data(), 20, 0, &d).code() == StatusCode::kDataLoss);
  CHECK(DecodeRecord(bytes.data(), bytes.size() - 1, 0, &d).code() == StatusCode::kDataLoss);
  b.rec().body.exec.image.length = 5000;  // beyond the data area
  bytes = b.Bytes();
  CHECK(DecodeRecord(bytes.data(), bytes.size(), 0, &d).code() == StatusCode::kDataLoss);
  RecordBuilder unknown(200);
  bytes = unknown.Bytes();
  CHECK(DecodeRecord(bytes.data(), bytes.size(), 0, &d).code() == StatusCode::kUnimplemented);
}

TEST_CASE("record decoder: tty names as under /dev") {
  CHECK(TtyDevName("pts3") == "pts/3");
  CHECK(TtyDevName("tty1") == "tty1");
  CHECK(TtyDevName("") == "");
  CHECK(TtyName(0) == "");
  CHECK(TtyName((136 << 8) | 3) == "pts/3");
  CHECK(TtyName((4 << 8) | 1) == "tty1");
  CHECK(TtyName((4 << 8) | 64) == "ttyS0");
}

}  // namespace
}  // namespace mamori::behavior::linux_sensors
