#include "mamori/platform/process.h"

#include <windows.h>

#include <catch2/catch.hpp>

#include "../../windows/win_util.h"
#include "test_util.h"

namespace mamori::platform {
namespace {

using testing::Child;
using testing::SleeperExe;

uint64_t NowNs() {
  FILETIME ft;
  ::GetSystemTimeAsFileTime(&ft);
  return win::FileTimeToUnixNs(ft);
}

std::string BaseName(const std::string& path) { return path.substr(path.find_last_of('\\') + 1); }

TEST_CASE("process list finds the test's own child with parent name and creation time", "[process]") {
  uint64_t before = NowNs();
  Child child(SleeperExe(), {"--sleep-child"});
  auto list = ListProcesses();
  REQUIRE(list.ok());
  const ProcessInfo* found = nullptr;
  bool found_self = false;
  for (const auto& p : *list) {
    if (p.pid == child.pid()) found = &p;
    if (p.pid == CurrentPid()) found_self = true;
  }
  CHECK(found_self);
  REQUIRE(found != nullptr);
  CHECK(found->ppid == CurrentPid());
  CHECK(found->name == BaseName(SleeperExe()));
  CHECK(found->start_time_ns + 1'000'000'000ull >= before);
  CHECK(found->start_time_ns <= NowNs() + 1'000'000'000ull);
  auto direct = ProcessStartTime(child.pid());
  REQUIRE(direct.ok());
  CHECK(*direct == found->start_time_ns);
}

TEST_CASE("kill refuses a pid whose creation time differs and kills with the right one", "[process]") {
  Child child(SleeperExe(), {"--sleep-child"});
  auto start = ProcessStartTime(child.pid());
  REQUIRE(start.ok());
  Status wrong = KillProcess(child.pid(), *start - 10'000'000'000ull);
  CHECK(wrong.code() == StatusCode::kFailedPrecondition);
  CHECK(wrong.message().find("another process") != std::string::npos);
  DWORD code = 0;
  CHECK_FALSE(child.Wait(200, &code));  // still running

  REQUIRE(KillProcess(child.pid(), *start).ok());
  REQUIRE(child.Wait(10'000, &code));
  CHECK(code == 1);
}

TEST_CASE("kill refuses pid 0 and this process and a missing creation time", "[process]") {
  CHECK(KillProcess(0, 1).code() == StatusCode::kInvalidArgument);
  CHECK(KillProcess(CurrentPid(), 1).code() == StatusCode::kInvalidArgument);
  Child child(SleeperExe(), {"--sleep-child"});
  CHECK(KillProcess(child.pid(), 0).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("kill and creation time of an exited process say not found", "[process]") {
  DWORD pid;
  {
    Child child(SleeperExe(), {"--sleep-child"});
    pid = child.pid();
  }  // terminated and every handle closed: the pid no longer names a process
  CHECK(ProcessStartTime(pid).status().code() == StatusCode::kNotFound);
  CHECK(KillProcess(pid, 1).code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace mamori::platform
