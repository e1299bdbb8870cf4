// Shared pieces of the converters: the priority table, UTF-8 cleaning, the
// spool payload encoding, command results.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <chrono>

#include "mamori/common/utf8.h"
#include "mamori/telemetry/convert.h"

namespace mamori::telemetry {

std::string ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;  // ASCII fast path
  if (i == s.size()) return std::string(s);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(s.substr(0, i));
  while (i < s.size()) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      const auto c = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

Priority PriorityOf(const v1::Event& e) {
  switch (e.payload_case()) {
    case v1::Event::kProcessActivity:
    case v1::Event::kFile:
    case v1::Event::kNetwork:
      return Priority::kLow;
    case v1::Event::kBehaviorAlert:
    case v1::Event::kScanFinding:
    case v1::Event::kQuarantine:
    case v1::Event::kSensorDrops:
      return Priority::kCritical;
    case v1::Event::kOnAccess:
      // A detection or lost on-access events: critical. A timeout (file
      // allowed unscanned) can come in storms: normal.
      return e.on_access().reason() == v1::OnAccessDecision::REASON_TIMEOUT ? Priority::kNormal : Priority::kCritical;
    case v1::Event::kAgentStatus:
    case v1::Event::kCommandResult:
    case v1::Event::kScanRun:
    case v1::Event::PAYLOAD_NOT_SET:
      break;
  }
  return Priority::kNormal;
}

v1::Event SpoolDropReport(const DropCounts& counts, int64_t timestamp_ns) {
  v1::Event e;
  e.set_timestamp_ns(timestamp_ns);
  e.set_severity(v1::SEVERITY_MEDIUM);
  v1::SensorDrops* d = e.mutable_sensor_drops();
  d->set_sensor("spool");
  d->set_drop_source("full");
  d->set_dropped(counts.low + counts.normal);
  return e;
}

Converted FromCommandResult(const v1::CommandResult& result, int64_t timestamp_ns) {
  Converted c;
  c.event.set_timestamp_ns(timestamp_ns);
  *c.event.mutable_command_result() = result;
  c.priority = PriorityOf(c.event);
  return c;
}

std::string EncodeSpoolPayload(const v1::Event& e) {
  std::string out;
  // Deterministic: equal events give equal records (tests compare them).
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    e.SerializeToCodedStream(&coded);
  }
  return out;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace mamori::telemetry
