#include <array>
#include <limits>
#include <string>

#include "mamori/behavior/event.h"
#include "mamori/common/json.h"

namespace mamori::behavior {
namespace {

constexpr std::array<std::string_view, kEventTypeCount> kTypeNames = {
    "exec",       "fork",        "exit",        "file_open_write", "file_create", "file_rename",
    "file_unlink", "file_chmod", "file_chown",  "net_connect",     "net_accept",  "net_bind",
    "setuid",     "setgid",      "module_load", "ptrace",          "sensor_drops"};

// Renders members in a fixed order, omitting defaults so replay fixtures and
// spool lines stay short.
class Writer {
 public:
  void Str(std::string_view key, const std::string& v) {
    if (v.empty()) return;
    Key(key);
    out_ += json::Quote(v);
  }
  void Num(std::string_view key, int64_t v) {
    if (v == 0) return;
    Key(key);
    out_ += std::to_string(v);
  }
  void Unsigned(std::string_view key, uint64_t v) {
    if (v == 0) return;
    Key(key);
    out_ += std::to_string(v);
  }
  void Bool(std::string_view key, bool v) {
    if (!v) return;
    Key(key);
    out_ += "true";
  }
  void List(std::string_view key, const std::vector<std::string>& v) {
    if (v.empty()) return;
    Key(key);
    out_ += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out_ += ',';
      out_ += json::Quote(v[i]);
    }
    out_ += ']';
  }
  void Raw(std::string_view key, const std::string& json) {
    Key(key);
    out_ += json;
  }
  std::string Finish() { return out_ + "}"; }

 private:
  void Key(std::string_view key) {
    out_ += first_ ? "" : ",";
    first_ = false;
    out_ += '"';
    out_ += key;
    out_ += "\":";
  }
  std::string out_ = "{";
  bool first_ = true;
};

std::string ProcessToJson(const ProcessContext& p) {
  Writer w;
  w.Num("pid", p.pid);
  w.Num("tid", p.tid);
  w.Num("ppid", p.ppid);
  w.Unsigned("uid", p.uid);
  w.Unsigned("euid", p.euid);
  w.Unsigned("gid", p.gid);
  w.Unsigned("egid", p.egid);
  w.Str("user", p.user);
  w.Str("image", p.image);
  w.List("argv", p.argv);
  w.Str("command_line", p.command_line);
  w.Str("cwd", p.cwd);
  w.Str("tty", p.tty);
  w.Str("cgroup", p.cgroup);
  w.Unsigned("start_time_ns", p.start_time_ns);
  w.Str("sha256", p.sha256);
  return w.Finish();
}

// Typed member readers: each names the key on a kind mismatch.
Status Expect(bool ok, std::string_view key, std::string_view want) {
  if (ok) return Status::Ok();
  return Status(StatusCode::kInvalidArgument,
                "key \"" + std::string(key) + "\" must be " + std::string(want));
}

template <typename T>
Status ReadInt(const json::Value& v, std::string_view key, T* out) {
  MAMORI_RETURN_IF_ERROR(Expect(v.is_number(), key, "an integer"));
  auto n = v.AsInt64();
  MAMORI_RETURN_IF_ERROR(Expect(n.ok(), key, "an integer"));
  if (*n < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
      (*n > 0 && static_cast<uint64_t>(*n) > static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
    return Status(StatusCode::kInvalidArgument, "key \"" + std::string(key) + "\" out of range");
  }
  *out = static_cast<T>(*n);
  return Status::Ok();
}

Status ReadU64(const json::Value& v, std::string_view key, uint64_t* out) {
  auto n = v.AsUint64();
  MAMORI_RETURN_IF_ERROR(Expect(n.ok(), key, "a non-negative integer"));
  *out = *n;
  return Status::Ok();
}

Status ReadStr(const json::Value& v, std::string_view key, std::string* out) {
  MAMORI_RETURN_IF_ERROR(Expect(v.is_string(), key, "a string"));
  *out = v.AsString();
  return Status::Ok();
}

Status ReadProcess(const json::Value& v, std::string_view where, ProcessContext* p) {
  MAMORI_RETURN_IF_ERROR(Expect(v.is_object(), where, "an object"));
  for (const auto& [key, m] : v.members()) {
    Status s;
    if (key == "pid") s = ReadInt(m, key, &p->pid);
    else if (key == "tid") s = ReadInt(m, key, &p->tid);
    else if (key == "ppid") s = ReadInt(m, key, &p->ppid);
    else if (key == "uid") s = ReadInt(m, key, &p->uid);
    else if (key == "euid") s = ReadInt(m, key, &p->euid);
    else if (key == "gid") s = ReadInt(m, key, &p->gid);
    else if (key == "egid") s = ReadInt(m, key, &p->egid);
    else if (key == "user") s = ReadStr(m, key, &p->user);
    else if (key == "image") s = ReadStr(m, key, &p->image);
    else if (key == "command_line") s = ReadStr(m, key, &p->command_line);
    else if (key == "cwd") s = ReadStr(m, key, &p->cwd);
    else if (key == "tty") s = ReadStr(m, key, &p->tty);
    else if (key == "cgroup") s = ReadStr(m, key, &p->cgroup);
    else if (key == "sha256") s = ReadStr(m, key, &p->sha256);
    else if (key == "start_time_ns") s = ReadU64(m, key, &p->start_time_ns);
    else if (key == "argv") {
      s = Expect(m.is_array(), key, "an array of strings");
      for (const auto& item : m.items()) {
        if (!s.ok()) break;
        s = Expect(item.is_string(), key, "an array of strings");
        if (s.ok()) p->argv.push_back(item.AsString());
      }
    } else {
      s = Status(StatusCode::kInvalidArgument, "unknown key \"" + key + "\"");
    }
    if (!s.ok()) return s.WithContext(where);
  }
  // Fixtures may give either form; keep both consistent like a sensor would.
  if (p->command_line.empty() && !p->argv.empty()) p->command_line = JoinArgv(p->argv);
  return Status::Ok();
}

}  // namespace

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (i) out += ' ';
    out += argv[i];
  }
  return out;
}

std::string_view EventTypeName(EventType t) {
  auto i = static_cast<size_t>(t);
  return i < kTypeNames.size() ? kTypeNames[i] : "unknown";
}

std::optional<EventType> EventTypeFromName(std::string_view name) {
  for (size_t i = 0; i < kTypeNames.size(); ++i) {
    if (kTypeNames[i] == name) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

std::string EventToJson(const Event& e) {
  Writer w;
  w.Raw("type", json::Quote(EventTypeName(e.type)));
  w.Unsigned("timestamp_ns", e.timestamp_ns);
  if (e.process.known() || !e.process.image.empty()) w.Raw("process", ProcessToJson(e.process));
  if (e.parent.known() || !e.parent.image.empty()) w.Raw("parent", ProcessToJson(e.parent));
  w.Str("target_filename", e.target_filename);
  w.Str("source_filename", e.source_filename);
  w.Unsigned("mode", e.mode);
  w.Unsigned("owner_uid", e.owner_uid);
  w.Unsigned("owner_gid", e.owner_gid);
  w.Str("protocol", e.protocol);
  w.Str("source_ip", e.source_ip);
  w.Unsigned("source_port", e.source_port);
  w.Str("destination_ip", e.destination_ip);
  w.Unsigned("destination_port", e.destination_port);
  w.Str("destination_hostname", e.destination_hostname);
  w.Bool("initiated", e.initiated);
  w.Num("exit_code", e.exit_code);
  w.Unsigned("new_id", e.new_id);
  w.Str("module_name", e.module_name);
  w.Num("target_pid", e.target_pid);
  w.Num("ptrace_request", e.ptrace_request);
  w.Unsigned("dropped", e.dropped);
  w.Str("drop_source", e.drop_source);
  return w.Finish();
}

Result<Event> EventFromJson(std::string_view line) {
  auto parsed = json::Parse(line);
  if (!parsed.ok()) return parsed.status();
  const json::Value& v = *parsed;
  if (!v.is_object()) return Status(StatusCode::kInvalidArgument, "an event must be a JSON object");
  Event e;
  bool have_type = false;
  for (const auto& [key, m] : v.members()) {
    Status s;
    if (key == "type") {
      s = Expect(m.is_string(), key, "a string");
      if (s.ok()) {
        auto t = EventTypeFromName(m.AsString());
        if (!t) return Status(StatusCode::kInvalidArgument, "unknown event type \"" + m.AsString() + "\"");
        e.type = *t;
        have_type = true;
      }
    } else if (key == "timestamp_ns") s = ReadU64(m, key, &e.timestamp_ns);
    else if (key == "process") s = ReadProcess(m, key, &e.process);
    else if (key == "parent") s = ReadProcess(m, key, &e.parent);
    else if (key == "target_filename") s = ReadStr(m, key, &e.target_filename);
    else if (key == "source_filename") s = ReadStr(m, key, &e.source_filename);
    else if (key == "mode") s = ReadInt(m, key, &e.mode);
    else if (key == "owner_uid") s = ReadInt(m, key, &e.owner_uid);
    else if (key == "owner_gid") s = ReadInt(m, key, &e.owner_gid);
    else if (key == "protocol") s = ReadStr(m, key, &e.protocol);
    else if (key == "source_ip") s = ReadStr(m, key, &e.source_ip);
    else if (key == "source_port") s = ReadInt(m, key, &e.source_port);
    else if (key == "destination_ip") s = ReadStr(m, key, &e.destination_ip);
    else if (key == "destination_port") s = ReadInt(m, key, &e.destination_port);
    else if (key == "destination_hostname") s = ReadStr(m, key, &e.destination_hostname);
    else if (key == "initiated") {
      s = Expect(m.is_bool(), key, "true or false");
      if (s.ok()) e.initiated = m.AsBool();
    } else if (key == "exit_code") s = ReadInt(m, key, &e.exit_code);
    else if (key == "new_id") s = ReadInt(m, key, &e.new_id);
    else if (key == "module_name") s = ReadStr(m, key, &e.module_name);
    else if (key == "target_pid") s = ReadInt(m, key, &e.target_pid);
    else if (key == "ptrace_request") s = ReadInt(m, key, &e.ptrace_request);
    else if (key == "dropped") s = ReadU64(m, key, &e.dropped);
    else if (key == "drop_source") s = ReadStr(m, key, &e.drop_source);
    else s = Status(StatusCode::kInvalidArgument, "unknown key \"" + key + "\"");
    if (!s.ok()) return s;
  }
  if (!have_type) return Status(StatusCode::kInvalidArgument, "missing key \"type\"");
  return e;
}

}  // namespace mamori::behavior
