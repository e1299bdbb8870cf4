// mamorictl output: human tables and JSON lines (one object per line; proto
// messages in the proto3 JSON mapping with field names as in the .proto,
// where `bytes` fields are base64). Thread-safe (pure functions).
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mamori/v1/console.pb.h"

namespace mamori::ctl {

// "2026-11-27T01:02:03Z"; "-" for 0.
std::string Time(int64_t ns);
// One JSON object for `m`, on one line.
std::string ToJson(const google::protobuf::Message& m);
// One line describing what an event is about (process, file, rule...).
std::string EventSummary(const mamori::v1::ConsoleEvent& e);
// {"time":..,"agent_id":..,"type":..,"summary":..,"event":{...}}
std::string EventJson(const mamori::v1::ConsoleEvent& e);
// "queued (agent offline)", "delivered", "running: 120 files, 1 finding", "succeeded", "failed: why"...
std::string DescribeState(const mamori::v1::CommandStatus& s);

// Columns padded to the widest cell, two spaces apart.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace mamori::ctl
