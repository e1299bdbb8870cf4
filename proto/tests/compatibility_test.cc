// The compatibility rules of docs/telemetry-protocol.md, checked: unknown
// fields, oneof members and enum values survive a parse; OS byte strings that
// are not UTF-8 round-trip; VERSION is what the build says; and no field
// number or enum value recorded in mamori/v1/fields.lock is reused or changed.
#include <catch2/catch.hpp>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mamori/v1/agent_service.grpc.pb.h"
#include "mamori/v1/agent_service.pb.h"
#include "mamori/v1/command.pb.h"
#include "mamori/v1/console.pb.h"
#include "mamori/v1/enrollment.pb.h"
#include "mamori/v1/event.pb.h"
#include "mamori/v1/version.h"

namespace {

namespace pb = google::protobuf;
using mamori::v1::Event;

// Appends a field with `number` to serialized bytes, as a newer sender would.
std::string WithExtraVarint(std::string bytes, int number, uint64_t value) {
  {
    pb::io::StringOutputStream raw(&bytes);
    pb::io::CodedOutputStream out(&raw);
    out.WriteTag(static_cast<uint32_t>(number) << 3 | 0);  // wire type 0: varint
    out.WriteVarint64(value);
  }  // the streams trim `bytes` when they go away
  return bytes;
}
std::string WithExtraBytes(std::string bytes, int number, const std::string& value) {
  {
    pb::io::StringOutputStream raw(&bytes);
    pb::io::CodedOutputStream out(&raw);
    out.WriteTag(static_cast<uint32_t>(number) << 3 | 2);  // wire type 2: length-delimited
    out.WriteVarint32(static_cast<uint32_t>(value.size()));
    out.WriteString(value);
  }
  return bytes;
}

Event SampleExec() {
  Event e;
  e.set_sequence(42);
  e.set_timestamp_ns(1'700'000'000'123'456'789);
  e.mutable_process()->set_pid(1234);
  e.mutable_process()->set_image("/usr/bin/curl");
  e.mutable_process()->add_argv("curl");
  e.mutable_process()->add_argv("http://example.test/x");
  e.mutable_process()->set_sha256(std::string(64, 'a'));
  e.mutable_process_activity()->set_kind(mamori::v1::ProcessActivity::KIND_EXEC);
  return e;
}

}  // namespace

TEST_CASE("an event round-trips through the wire format", "[proto]") {
  Event e = SampleExec();
  std::string wire = e.SerializeAsString();
  Event back;
  REQUIRE(back.ParseFromString(wire));
  CHECK(back.sequence() == 42);
  CHECK(back.process().argv_size() == 2);
  CHECK(back.payload_case() == Event::kProcessActivity);
  CHECK(back.SerializeAsString() == wire);
}

TEST_CASE("unknown fields from a newer sender are tolerated and kept", "[proto]") {
  Event e = SampleExec();
  std::string wire = WithExtraBytes(WithExtraVarint(e.SerializeAsString(), 15, 7), 1999, "future");
  Event back;
  REQUIRE(back.ParseFromString(wire));
  CHECK(back.sequence() == 42);
  CHECK(back.process().image() == "/usr/bin/curl");
  // Relaying the message (server -> store -> console) keeps what it did not understand.
  Event again;
  REQUIRE(again.ParseFromString(back.SerializeAsString()));
  CHECK(again.SerializeAsString() == back.SerializeAsString());
  CHECK(back.SerializeAsString().size() == wire.size());
}

TEST_CASE("an unknown payload kind parses with no payload set", "[proto]") {
  Event e;
  e.set_sequence(7);
  // Field 99 stands for a payload member added by a later MINOR version.
  std::string wire = WithExtraBytes(e.SerializeAsString(), 99, std::string("\x08\x01", 2));
  Event back;
  REQUIRE(back.ParseFromString(wire));
  CHECK(back.sequence() == 7);
  CHECK(back.payload_case() == Event::PAYLOAD_NOT_SET);
}

TEST_CASE("an unknown command kind parses with no kind set", "[proto]") {
  mamori::v1::Command c;
  c.set_command_id("c1");
  std::string wire = WithExtraBytes(c.SerializeAsString(), 60, "");
  mamori::v1::Command back;
  REQUIRE(back.ParseFromString(wire));
  CHECK(back.command_id() == "c1");
  CHECK(back.kind_case() == mamori::v1::Command::KIND_NOT_SET);
}

TEST_CASE("an unknown enum value is kept as its number", "[proto]") {
  mamori::v1::ProcessActivity a;
  // kind = 77: a value added by a later MINOR version.
  std::string wire = WithExtraVarint("", 1, 77);
  REQUIRE(a.ParseFromString(wire));
  CHECK(static_cast<int>(a.kind()) == 77);
  CHECK_FALSE(mamori::v1::ProcessActivity::Kind_IsValid(a.kind()));
  CHECK(a.SerializeAsString() == wire);
}

TEST_CASE("paths and argv that are not UTF-8 round-trip byte for byte", "[proto]") {
  Event e;
  const std::string bad_path = std::string("/tmp/\xff\xfe\x80name\x01", 12);
  e.mutable_process()->set_image(bad_path);
  e.mutable_process()->add_argv(bad_path);
  e.mutable_file()->set_target_filename(bad_path);
  mamori::v1::ScanFinding f;
  f.set_object(std::string("a.zip!\xc3\x28.exe"));
  Event back;
  REQUIRE(back.ParseFromString(e.SerializeAsString()));
  CHECK(back.process().image() == bad_path);
  CHECK(back.file().target_filename() == bad_path);
  mamori::v1::ScanFinding fb;
  REQUIRE(fb.ParseFromString(f.SerializeAsString()));
  CHECK(fb.object() == f.object());
}

TEST_CASE("VERSION matches the compiled protocol version", "[proto]") {
  std::ifstream in(MAMORI_PROTO_VERSION_FILE);
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == mamori::v1::kProtocolVersion);
  CHECK(line.rfind(std::to_string(mamori::v1::kProtocolMajor) + ".", 0) == 0);
}

TEST_CASE("the service has the two RPCs of the contract", "[proto]") {
  const pb::ServiceDescriptor* s = mamori::v1::AgentMessage::descriptor()->file()->FindServiceByName("AgentService");
  REQUIRE(s != nullptr);
  const pb::MethodDescriptor* enroll = s->FindMethodByName("Enroll");
  const pb::MethodDescriptor* connect = s->FindMethodByName("Connect");
  REQUIRE(enroll != nullptr);
  REQUIRE(connect != nullptr);
  CHECK_FALSE(enroll->client_streaming());
  CHECK(connect->client_streaming());
  CHECK(connect->server_streaming());
}

// ---- fields.lock ------------------------------------------------------------
//
// One line per field and enum value ever published:
//   field <message> <number> <name> <label> <type> [oneof=<name>]
//   enum <enum> <number> <name>
// A locked number must keep its name, label, type and oneof, or be `reserved`.

namespace {

std::string FieldLine(const pb::FieldDescriptor* f) {
  std::ostringstream o;
  o << "field " << f->containing_type()->full_name() << " " << f->number() << " " << f->name() << " "
    << (f->is_map() ? "map" : f->is_repeated() ? "repeated" : "singular") << " " << f->type_name();
  if (f->message_type() != nullptr) o << ":" << f->message_type()->full_name();
  if (f->enum_type() != nullptr) o << ":" << f->enum_type()->full_name();
  if (f->real_containing_oneof() != nullptr) o << " oneof=" << f->real_containing_oneof()->name();
  return o.str();
}

void CollectEnum(const pb::EnumDescriptor* e, std::vector<std::string>* out) {
  for (int i = 0; i < e->value_count(); ++i) {
    out->push_back("enum " + e->full_name() + " " + std::to_string(e->value(i)->number()) + " " + e->value(i)->name());
  }
}

void CollectMessage(const pb::Descriptor* m, std::vector<std::string>* out) {
  if (m->options().map_entry()) return;  // described by the map field itself
  for (int i = 0; i < m->field_count(); ++i) out->push_back(FieldLine(m->field(i)));
  for (int i = 0; i < m->enum_type_count(); ++i) CollectEnum(m->enum_type(i), out);
  for (int i = 0; i < m->nested_type_count(); ++i) CollectMessage(m->nested_type(i), out);
}

std::vector<std::string> CurrentContract() {
  // Touch one message of each file: a static library only links the files
  // something refers to, and only linked files are in the generated pool.
  (void)mamori::v1::ProcessContext::descriptor();
  (void)mamori::v1::Command::descriptor();
  (void)mamori::v1::EnrollRequest::descriptor();
  (void)mamori::v1::Event::descriptor();
  (void)mamori::v1::AgentMessage::descriptor();
  (void)mamori::v1::ConsoleEvent::descriptor();
  std::vector<std::string> out;
  for (const char* name : {"mamori/v1/common.proto", "mamori/v1/command.proto", "mamori/v1/enrollment.proto",
                           "mamori/v1/event.proto", "mamori/v1/agent_service.proto", "mamori/v1/console.proto"}) {
    const pb::FileDescriptor* f = pb::DescriptorPool::generated_pool()->FindFileByName(name);
    INFO(name);
    REQUIRE(f != nullptr);
    for (int i = 0; i < f->enum_type_count(); ++i) CollectEnum(f->enum_type(i), &out);
    for (int i = 0; i < f->message_type_count(); ++i) CollectMessage(f->message_type(i), &out);
  }
  return out;
}

}  // namespace

TEST_CASE("no locked field number or enum value is reused or changed", "[proto]") {
  const std::vector<std::string> current = CurrentContract();
  const std::set<std::string> current_set(current.begin(), current.end());
  std::ifstream in(MAMORI_PROTO_LOCK_FILE);
  REQUIRE(in.good());
  std::set<std::string> locked;
  std::vector<std::string> broken;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    locked.insert(line);
    if (current_set.count(line) != 0) continue;
    // Gone or changed: allowed only when the number is reserved now.
    std::istringstream words(line);
    std::string what, owner;
    int number = 0;
    words >> what >> owner >> number;
    bool reserved = false;
    if (what == "field") {
      const pb::Descriptor* m = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(owner);
      reserved = m != nullptr && m->IsReservedNumber(number) && m->FindFieldByNumber(number) == nullptr;
    } else if (what == "enum") {
      const pb::EnumDescriptor* e = pb::DescriptorPool::generated_pool()->FindEnumTypeByName(owner);
      reserved = e != nullptr && e->IsReservedNumber(number) && e->FindValueByNumber(number) == nullptr;
    }
    if (!reserved) broken.push_back(line);
  }
  std::vector<std::string> unlocked;
  for (const auto& line : current) {
    if (locked.count(line) == 0) unlocked.push_back(line);
  }
  std::string report;
  for (const auto& l : broken) report += "changed or removed without `reserved`: " + l + "\n";
  for (const auto& l : unlocked) report += l + "\n";
  // Unwrapped on stderr too, so the lines can be pasted into the lock file.
  if (!report.empty()) std::cerr << report;
  INFO("Locked entries must stay as they are (or be reserved); new entries must be appended to "
       << MAMORI_PROTO_LOCK_FILE << " (and VERSION's MINOR bumped); see stderr for the lines");
  CHECK(broken.empty());
  CHECK(unlocked.empty());
}
