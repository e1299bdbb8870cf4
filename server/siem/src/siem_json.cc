// The SIEM JSON projection. Envelope fields are written by hand; "process",
// "parent" and the payload object are written from the protobuf descriptors,
// so their keys are the proto field names, which the wire contract never
// renames (proto/mamori/v1/fields.lock). Zero / empty values are left out
// (proto3 cannot tell them from absent).
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "mamori/common/json.h"
#include "mamori/server/siem.h"

namespace mamori::server {
namespace {

using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Enum values are prefixed with their enum's name (KIND_EXEC in enum Kind):
// the SIEM sees the rest in lowercase ("exec"). Unknown numbers stay numbers.
void AppendEnum(std::string* out, const EnumDescriptor* type, int number) {
  const auto* v = type->FindValueByNumber(number);
  if (v == nullptr) {
    *out += std::to_string(number);
    return;
  }
  std::string prefix;
  for (size_t i = 0; i < type->name().size(); ++i) {
    const char ch = type->name()[i];
    if (i > 0 && std::isupper(static_cast<unsigned char>(ch))) prefix.push_back('_');
    prefix.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
  }
  prefix.push_back('_');
  std::string name = v->name();
  if (name.starts_with(prefix)) name = name.substr(prefix.size());
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  *out += json::Quote(name);
}

void AppendMessage(std::string* out, const Message& m);

void AppendDouble(std::string* out, double d) {
  if (!std::isfinite(d)) {
    *out += "null";
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  *out += buf;
}

// One value of field f (index >= 0: element of a repeated field).
void AppendValue(std::string* out, const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      *out += std::to_string(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      *out += std::to_string(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      *out += std::to_string(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      *out += std::to_string(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      AppendDouble(out, rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      AppendDouble(out, rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      *out += (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      AppendEnum(out, f->enum_type(), rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f));
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      // bytes fields (paths, argv) are not necessarily UTF-8: Quote writes invalid bytes as \\xHH.
      std::string scratch;
      const std::string& s =
          rep ? r->GetRepeatedStringReference(m, f, index, &scratch) : r->GetStringReference(m, f, &scratch);
      *out += json::Quote(s);
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      AppendMessage(out, rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
      break;
  }
}

// A map field as a JSON object (keys as text).
void AppendMap(std::string* out, const Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  const FieldDescriptor* key = f->message_type()->map_key();
  const FieldDescriptor* value = f->message_type()->map_value();
  *out += '{';
  const int n = r->FieldSize(m, f);
  for (int i = 0; i < n; ++i) {
    const Message& entry = r->GetRepeatedMessage(m, f, i);
    if (i > 0) *out += ',';
    std::string k;
    if (key->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      k = entry.GetReflection()->GetString(entry, key);
    } else {
      AppendValue(&k, entry, key, -1);
    }
    *out += json::Quote(k);
    *out += ':';
    AppendValue(out, entry, value, -1);
  }
  *out += '}';
}

void AppendMessage(std::string* out, const Message& m) {
  std::vector<const FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);  // set fields, by number; unknown fields are not listed
  *out += '{';
  bool first = true;
  for (const FieldDescriptor* f : fields) {
    if (!first) *out += ',';
    first = false;
    *out += json::Quote(f->name());
    *out += ':';
    if (f->is_map()) {
      AppendMap(out, m, f);
    } else if (f->is_repeated()) {
      *out += '[';
      const int n = m.GetReflection()->FieldSize(m, f);
      for (int i = 0; i < n; ++i) {
        if (i > 0) *out += ',';
        AppendValue(out, m, f, i);
      }
      *out += ']';
    } else {
      AppendValue(out, m, f, -1);
    }
  }
  *out += '}';
}

std::string_view SeverityName(int s) {
  switch (s) {
    case mamori::v1::SEVERITY_INFO:
      return "info";
    case mamori::v1::SEVERITY_LOW:
      return "low";
    case mamori::v1::SEVERITY_MEDIUM:
      return "medium";
    case mamori::v1::SEVERITY_HIGH:
      return "high";
    case mamori::v1::SEVERITY_CRITICAL:
      return "critical";
    default:
      return "unspecified";
  }
}

}  // namespace

std::string Rfc3339(int64_t ns, int digits) {
  int64_t secs = ns / 1'000'000'000;
  int64_t frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  if (digits == 6) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(frac / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(frac));
  }
  return buf;
}

SiemClass ClassOfType(std::string_view type) {
  if (type == "scan_finding" || type == "onaccess_detection") return SiemClass::kFinding;
  if (type == "behavior_alert") return SiemClass::kAlert;
  return SiemClass::kActivity;
}

std::string_view SiemClassName(SiemClass c) {
  switch (c) {
    case SiemClass::kFinding:
      return "finding";
    case SiemClass::kAlert:
      return "alert";
    case SiemClass::kActivity:
      break;
  }
  return "activity";
}

std::string SiemJson(const SiemRecord& rec, bool with_details) {
  const mamori::v1::Event& e = *rec.event;
  std::string out;
  out.reserve(512);
  out += "{\"schema\":\"mamori.siem.v1\",\"class\":\"";
  out += SiemClassName(ClassOfType(rec.type));
  out += "\",\"type\":";
  out += json::Quote(rec.type);
  out += ",\"agent_id\":";
  out += json::Quote(rec.agent_id);
  out += ",\"hostname\":";
  out += json::Quote(rec.hostname);
  out += ",\"sequence\":" + std::to_string(e.sequence());
  out += ",\"time\":\"" + Rfc3339(e.timestamp_ns()) + "\"";
  out += ",\"time_ns\":" + std::to_string(e.timestamp_ns());
  out += ",\"received_time\":\"" + Rfc3339(rec.received_at_ns) + "\"";
  out += ",\"severity\":\"";
  out += SeverityName(e.severity());
  out += "\"";
  if (!with_details) {
    out += ",\"truncated\":true}";
    return out;
  }
  if (e.has_process()) {
    out += ",\"process\":";
    AppendMessage(&out, e.process());
  }
  if (e.has_parent()) {
    out += ",\"parent\":";
    AppendMessage(&out, e.parent());
  }
  const auto* oneof = e.GetDescriptor()->FindOneofByName("payload");
  const FieldDescriptor* payload = e.GetReflection()->GetOneofFieldDescriptor(e, oneof);
  if (payload != nullptr) {
    out += ',';
    out += json::Quote(payload->name());
    out += ':';
    AppendMessage(&out, e.GetReflection()->GetMessage(e, payload));
  }
  out += '}';
  return out;
}

}  // namespace mamori::server
