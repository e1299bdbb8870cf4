#include "server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "fake_server.h"
#include "mamori/common/file_util.h"
#include "mamori/v1/event.pb.h"

namespace mamori::telemetry::testing {

namespace {

// Runs argv, stdout to *out (and stderr to *err), returns the exit code.
int RunCapture(const std::vector<std::string>& argv, std::string* out, std::string* err) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return -1;
  std::vector<char*> args;  // built before fork: the child only calls async-signal-safe functions
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  auto drain = [](int fd, std::string* s) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s->append(buf, static_cast<size_t>(n));
    ::close(fd);
  };
  std::string dummy;
  std::thread t([&] { drain(err_pipe[0], err != nullptr ? err : &dummy); });
  drain(out_pipe[0], out);
  t.join();
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

ServerProcess::ServerProcess(std::string binary, std::string data_dir, std::string extra_yaml, bool insecure)
    : binary_(std::move(binary)),
      data_dir_(std::move(data_dir)),
      config_path_(data_dir_ + "/server.yaml"),
      log_path_(data_dir_ + "/server.log"),
      extra_yaml_(std::move(extra_yaml)),
      insecure_(insecure) {
  (void)WriteConfig();
}

Status ServerProcess::WriteConfig() const {
  const std::string yaml = "listen: 127.0.0.1:" + std::to_string(port_) + "\ndata_dir: " + data_dir_ +
                           "\nlog_level: info\nmetrics:\n  enabled: false\n" + extra_yaml_;
  return WriteFileAtomically(config_path_, yaml, 0600);
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Kill9();
}

Status ServerProcess::Start() {
  // A restart binds the port of the first start again; should something else
  // hold it meanwhile (the kernel hands out ephemeral ports from the same
  // range), it is retried for a while rather than failing the test outright.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    bool port_in_use = false;
    Status s = StartOnce(&port_in_use);
    if (s.ok() || !port_in_use || std::chrono::steady_clock::now() >= until) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

Status ServerProcess::StartOnce(bool* port_in_use) {
  if (pid_ > 0) return FailedPreconditionError("already running");
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return ErrnoError(errno, "open " + log_path_);
  off_t start_offset = ::lseek(log_fd, 0, SEEK_END);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execl(binary_.c_str(), binary_.c_str(), "--config", config_path_.c_str(), insecure_ ? "--insecure" : nullptr,
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(log_fd);
  if (pid < 0) return ErrnoError(errno, "fork");
  pid_ = pid;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < until) {
    Result<std::string> log = ReadFileToString(log_path_);
    const size_t at = log.ok() && log->size() > static_cast<size_t>(start_offset)
                          ? log->find("listening on 127.0.0.1:", static_cast<size_t>(start_offset))
                          : std::string::npos;
    if (at != std::string::npos) {
      if (port_ == 0) {  // the first start: keep the port the kernel chose for the restarts
        port_ = std::atoi(log->c_str() + at + std::strlen("listening on 127.0.0.1:"));
        if (port_ <= 0) return InternalError("no port in the server's log " + log_path_);
        MAMORI_RETURN_IF_ERROR(WriteConfig());
      }
      return Status::Ok();
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *port_in_use = log.ok() && log->find("cannot listen", static_cast<size_t>(start_offset)) != std::string::npos;
      return InternalError("mamori-server exited at start; see " + log_path_ + ":\n" + (log.ok() ? *log : ""));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill9();
  return DeadlineExceededError("mamori-server did not listen within 15 s; see " + log_path_);
}

Status ServerProcess::Stop() {
  if (pid_ <= 0) return Status::Ok();
  ::kill(pid_, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) && WEXITSTATUS(status) == 0
                 ? Status::Ok()
                 : InternalError("mamori-server exited with status " + std::to_string(status));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill9();
  return DeadlineExceededError("mamori-server ignored SIGTERM for 15 s");
}

void ServerProcess::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

Result<std::string> ServerProcess::Admin(const std::vector<std::string>& verb) const {
  std::vector<std::string> argv = {binary_, "--config", config_path_};
  argv.insert(argv.end(), verb.begin(), verb.end());
  std::string out, err;
  const int code = RunCapture(argv, &out, &err);
  if (code != 0) return InternalError("mamori-server " + verb[0] + " exited " + std::to_string(code) + ": " + err);
  return out;
}

Result<std::string> ServerProcess::CreateToken() const {
  Result<std::string> out = Admin({"token", "create"});
  if (!out.ok()) return out;
  std::string t = *out;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

namespace {

struct Db {
  sqlite3* db = nullptr;
  ~Db() { sqlite3_close(db); }
};

Status OpenReadOnly(const std::string& path, Db* db) {
  if (sqlite3_open_v2(path.c_str(), &db->db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return UnavailableError("open " + path + ": " + sqlite3_errmsg(db->db));
  }
  sqlite3_busy_timeout(db->db, 5000);
  return Status::Ok();
}

}  // namespace

Result<StoredSequences> QueryStoredSequences(const std::string& db_path, const std::string& agent_id,
                                             bool check_markers) {
  Db db;
  MAMORI_RETURN_IF_ERROR(OpenReadOnly(db_path, &db));
  sqlite3_stmt* st = nullptr;
  const char* sql = "SELECT seq, type, payload FROM events WHERE agent_id = ?1 ORDER BY seq";
  if (sqlite3_prepare_v2(db.db, sql, -1, &st, nullptr) != SQLITE_OK) {
    return InternalError(std::string("prepare: ") + sqlite3_errmsg(db.db));
  }
  sqlite3_bind_text(st, 1, agent_id.c_str(), -1, SQLITE_TRANSIENT);
  StoredSequences s;
  uint64_t prev = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const auto seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    ++s.rows;
    if (seq != prev) ++s.distinct;
    if (s.rows == 1) s.min = seq;
    s.max = seq;
    prev = seq;
    if (check_markers && std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 1))) == "exec") {
      v1::Event e;
      if (!e.ParseFromArray(sqlite3_column_blob(st, 2), sqlite3_column_bytes(st, 2)) ||
          static_cast<uint64_t>(e.process().pid()) != seq) {
        ++s.marker_mismatches;
      }
    }
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return InternalError(std::string("step: ") + sqlite3_errmsg(db.db));
  return s;
}

uint64_t QueryAckedSequence(const std::string& db_path, const std::string& agent_id) {
  Db db;
  if (!OpenReadOnly(db_path, &db).ok()) return 0;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.db, "SELECT acked_seq FROM agents WHERE agent_id = ?1", -1, &st, nullptr) != SQLITE_OK) {
    return 0;
  }
  sqlite3_bind_text(st, 1, agent_id.c_str(), -1, SQLITE_TRANSIENT);
  uint64_t acked = 0;
  if (sqlite3_step(st) == SQLITE_ROW) acked = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
  sqlite3_finalize(st);
  return acked;
}

Result<std::vector<std::string>> QueryPayloads(const std::string& db_path, const std::string& agent_id,
                                               const std::string& type) {
  Db db;
  MAMORI_RETURN_IF_ERROR(OpenReadOnly(db_path, &db));
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.db, "SELECT payload FROM events WHERE agent_id = ?1 AND type = ?2 ORDER BY seq", -1, &st,
                         nullptr) != SQLITE_OK) {
    return InternalError(std::string("prepare: ") + sqlite3_errmsg(db.db));
  }
  sqlite3_bind_text(st, 1, agent_id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, type.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<std::string> out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    out.emplace_back(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                     static_cast<size_t>(sqlite3_column_bytes(st, 0)));
  }
  sqlite3_finalize(st);
  return out;
}

}  // namespace mamori::telemetry::testing
