// mamori_test_service: the smallest program on service_host.h, for tests.
//
//   mamori_test_service [--console] [--name NAME] [--log FILE] [--start-ms N]
//                       [--run-ms N] [--stop-ms N] [--exit-code N] [--fail-start]
//
// Appends one line per step to the log: "start", "run", "stop REASON" (or
// "stop timeout" when --run-ms passes with no stop request), "exit CODE" (or
// "error MESSAGE"). --stop-ms: how long Run takes to wind down after a stop
// request (so a service manager's STOP_PENDING can be observed). Exit code: the --exit-code value after a
// stop, 2 on a host error (e.g. service mode outside the SCM).
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "mamori/platform/service_host.h"

namespace {

using mamori::Status;
using mamori::platform::ServiceApp;
using mamori::platform::StopReason;

std::string g_log;

void Log(const std::string& line) {
  if (g_log.empty()) return;
  std::ofstream f(g_log, std::ios::app);
  f << line << "\n";
}

class TestApp : public ServiceApp {
 public:
  TestApp(int start_ms, int run_ms, int stop_ms, int exit_code, bool fail_start)
      : start_ms_(start_ms), run_ms_(run_ms), stop_ms_(stop_ms), exit_code_(exit_code), fail_start_(fail_start) {}

  Status Start(const std::function<void()>& progress) override {
    Log("start");
    for (int waited = 0; waited < start_ms_; waited += 100) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      progress();
    }
    if (fail_start_) return mamori::FailedPreconditionError("asked to fail at start");
    return Status::Ok();
  }

  int Run() override {
    Log("run");
    std::unique_lock<std::mutex> lock(mu_);
    if (run_ms_ > 0) {
      if (!cv_.wait_for(lock, std::chrono::milliseconds(run_ms_), [this] { return stop_; })) {
        Log("stop timeout");
        return exit_code_;
      }
    } else {
      cv_.wait(lock, [this] { return stop_; });
    }
    Log(std::string("stop ") + mamori::platform::StopReasonName(reason_));
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(stop_ms_));
    return exit_code_;
  }

  void RequestStop(StopReason reason) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_) reason_ = reason;
    stop_ = true;
    cv_.notify_all();
  }

 private:
  int start_ms_;
  int run_ms_;
  int stop_ms_;
  int exit_code_;
  bool fail_start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  StopReason reason_ = StopReason::kStop;
};

}  // namespace

int main(int argc, char** argv) {
  bool console = false, fail_start = false;
  int start_ms = 0, run_ms = 0, stop_ms = 0, exit_code = 0;
  mamori::platform::ServiceHostOptions options;
  options.name = "MamoriTestService";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--console") console = true;
    else if (a == "--fail-start") fail_start = true;
    else if (a == "--name" && has_value) options.name = argv[++i];
    else if (a == "--log" && has_value) g_log = argv[++i];
    else if (a == "--start-ms" && has_value) start_ms = std::atoi(argv[++i]);
    else if (a == "--run-ms" && has_value) run_ms = std::atoi(argv[++i]);
    else if (a == "--stop-ms" && has_value) stop_ms = std::atoi(argv[++i]);
    else if (a == "--exit-code" && has_value) exit_code = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "mamori_test_service: unknown argument '%s'\n", a.c_str());
      return 64;
    }
  }
  options.start_wait_hint = std::chrono::milliseconds(2000);
  options.stop_wait_hint = std::chrono::milliseconds(2000);
  TestApp app(start_ms, run_ms, stop_ms, exit_code, fail_start);
  auto result = console ? mamori::platform::RunInConsole(options, app) : mamori::platform::RunAsService(options, app);
  if (!result.ok()) {
    Log("error " + result.status().ToString());
    std::fprintf(stderr, "mamori_test_service: %s\n", result.status().ToString().c_str());
    return 2;
  }
  Log("exit " + std::to_string(*result));
  return *result;
}
