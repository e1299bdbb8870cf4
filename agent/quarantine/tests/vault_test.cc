#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "mamori/common/file_util.h"
#include "mamori/quarantine/vault.h"
#include "mamori/scanner/hasher.h"
#include "test_util.h"

namespace mamori::quarantine {
namespace {

using testing::Eicar;
using testing::TempDir;

std::string Sha(const std::string& data) { return scanner::Hasher::Of(data).hex(scanner::DigestKind::kSha256); }

std::unique_ptr<Vault> OpenVault(const std::string& dir, VaultOptions o = {}) {
  auto v = Vault::Open(dir, std::move(o));
  REQUIRE(v.ok());
  return std::move(*v);
}

bool Exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

TEST_CASE("Quarantine moves the file into the encrypted vault and restore brings back bytes, mode and times") {
  TempDir dir;
  std::string victim = dir.Write("home/dl/invoice.com", Eicar());
  REQUIRE(::chmod(victim.c_str(), 0751) == 0);
  struct timespec times[2] = {{1600000000, 111}, {1500000000, 222}};
  REQUIRE(::utimensat(AT_FDCWD, victim.c_str(), times, 0) == 0);
  auto vault = OpenVault(dir.path() + "/vault");
  auto rec = vault->Quarantine(victim, -1, "Test.EICAR", "sigv1");
  REQUIRE(rec.ok());
  CHECK(!Exists(victim));
  CHECK(rec->sha256 == Sha(Eicar()));
  CHECK(rec->detection == "Test.EICAR");
  CHECK(rec->state == "quarantined");
  // Encrypted at rest: the vault file does not contain the bytes.
  auto stored = ReadFileToString(dir.path() + "/vault/" + rec->id + ".data");
  REQUIRE(stored.ok());
  CHECK(stored->find("EICAR") == std::string::npos);
  auto listed = vault->List();
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].original_path == victim);

  auto restored = vault->Restore(rec->id, {});
  REQUIRE(restored.ok());
  auto back = ReadFileToString(victim);
  REQUIRE(back.ok());
  CHECK(*back == Eicar());
  struct stat st {};
  REQUIRE(::stat(victim.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0751);
  CHECK(st.st_mtim.tv_sec == 1500000000);
  CHECK(st.st_mtim.tv_nsec == 222);
  CHECK(st.st_uid == ::getuid());
  CHECK(vault->List()->empty());
}

TEST_CASE("Restore refuses to overwrite unless forced, and can add the hash to an allow-list") {
  TempDir dir;
  std::string victim = dir.Write("a/x.bin", Eicar());
  auto vault = OpenVault(dir.path() + "/vault");
  auto rec = vault->Quarantine(victim, -1, "D", "v");
  REQUIRE(rec.ok());
  dir.Write("a/x.bin", "a new file took the name");
  auto refused = vault->Restore(rec->id, {});
  REQUIRE(!refused.ok());
  CHECK(refused.status().code() == StatusCode::kAlreadyExists);
  CHECK(*ReadFileToString(victim) == "a new file took the name");
  RestoreOptions o;
  o.to = dir.path() + "/elsewhere.bin";
  o.allow_list_path = dir.path() + "/local.allow";
  REQUIRE(vault->Restore(rec->id, o).ok());
  CHECK(*ReadFileToString(o.to) == Eicar());
  CHECK(ReadFileToString(o.allow_list_path)->find("sha256:" + Sha(Eicar())) != std::string::npos);
}

TEST_CASE("Restore resists symlinks in the target path") {
  TempDir dir;
  TempDir outside;
  std::string victim = dir.Write("d/x.bin", Eicar());
  auto vault = OpenVault(dir.path() + "/vault");
  auto rec = vault->Quarantine(victim, -1, "D", "v");
  REQUIRE(rec.ok());
  // The folder of the original is replaced by a symlink pointing elsewhere.
  std::filesystem::remove_all(dir.path() + "/d");
  std::filesystem::create_directory_symlink(outside.path(), dir.path() + "/d");
  auto r = vault->Restore(rec->id, {});
  REQUIRE(!r.ok());
  CHECK(r.status().code() == StatusCode::kPermissionDenied);
  CHECK(!Exists(outside.path() + "/x.bin"));
  // The final component as a symlink is not followed either.
  std::filesystem::remove(dir.path() + "/d");
  std::filesystem::create_directory(dir.path() + "/d");
  std::filesystem::create_symlink(outside.path() + "/target", dir.path() + "/d/x.bin");
  auto r2 = vault->Restore(rec->id, {});
  REQUIRE(!r2.ok());
  CHECK(!Exists(outside.path() + "/target"));
  CHECK(vault->List()->size() == 1);  // still safe in the vault
}

TEST_CASE("A file swapped after the scan is not quarantined: the vault acts on the inode it read") {
  TempDir dir;
  std::string victim = dir.Write("x.bin", Eicar());
  int fd = ::open(victim.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  std::string other = dir.Write("innocent.txt", "innocent");
  REQUIRE(::rename(other.c_str(), victim.c_str()) == 0);
  auto vault = OpenVault(dir.path() + "/vault");
  auto r = vault->Quarantine(victim, fd, "D", "v");
  ::close(fd);
  REQUIRE(!r.ok());
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK(*ReadFileToString(victim) == "innocent");
  CHECK(vault->List()->empty());
}

TEST_CASE("Quarantining a file that is already gone keeps no duplicate") {
  TempDir dir;
  std::string victim = dir.Write("x.bin", Eicar());
  int fd = ::open(victim.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  auto vault = OpenVault(dir.path() + "/vault");
  REQUIRE(vault->Quarantine(victim, fd, "D", "v").ok());
  auto again = vault->Quarantine(victim, fd, "D", "v");  // a second event for the same file
  ::close(fd);
  REQUIRE(!again.ok());
  CHECK(again.status().code() == StatusCode::kNotFound);
  CHECK(vault->List()->size() == 1);
}

TEST_CASE("A damaged vault item is refused at restore and stays in the vault") {
  TempDir dir;
  std::string victim = dir.Write("x.bin", Eicar() + std::string(1000, 'p'));
  auto vault = OpenVault(dir.path() + "/vault");
  auto rec = vault->Quarantine(victim, -1, "D", "v");
  REQUIRE(rec.ok());
  std::string data_path = dir.path() + "/vault/" + rec->id + ".data";
  auto data = ReadFileToString(data_path);
  (*data)[data->size() / 2] ^= 1;
  REQUIRE(WriteFileAtomically(data_path, *data).ok());
  auto r = vault->Restore(rec->id, {});
  REQUIRE(!r.ok());
  CHECK(r.status().code() == StatusCode::kDataLoss);
  CHECK(!Exists(victim));
  REQUIRE(vault->List()->size() == 1);
  CHECK((*vault->List())[0].state == "quarantined");
}

TEST_CASE("Vault refuses a folder open to others; purge honors retention and quota oldest first") {
  TempDir dir;
  std::string open_dir = dir.path() + "/open";
  REQUIRE(MakeDirs(open_dir, 0755).ok());
  REQUIRE(::chmod(open_dir.c_str(), 0755) == 0);
  CHECK(Vault::Open(open_dir).status().code() == StatusCode::kPermissionDenied);

  VaultOptions o;
  o.quota_bytes = 2500;
  o.retention_seconds = 100;
  auto vault = OpenVault(dir.path() + "/vault", o);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    auto r = vault->Quarantine(dir.Write("f" + std::to_string(i), std::string(1000, static_cast<char>('a' + i))), -1,
                               "D", "v");
    REQUIRE(r.ok());
    ids.push_back(r->id);
  }
  auto now = static_cast<int64_t>(std::time(nullptr));
  auto purged = vault->Purge(now);
  REQUIRE(purged.ok());
  CHECK(*purged == 2);  // 4 x ~1 KB > 2.5 KB: two go
  CHECK(vault->List()->size() == 2);
  CHECK(*vault->Purge(now + 1000) == 2);  // past retention: all go
  CHECK(vault->List()->empty());
}

// Runs `op` in a child process that dies right after `step`, then reopens the
// vault (which reconciles) in this process.
void CrashAfter(Step step, const std::string& vault_dir, const std::function<void(Vault&)>& op) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    VaultOptions o;
    o.after_step = [step](Step s) {
      if (s == step) ::_exit(0);  // a crash: no destructors, no cleanup
    };
    auto v = Vault::Open(vault_dir, o);
    if (!v.ok()) ::_exit(3);
    op(**v);
    ::_exit(4);  // the step was never reached
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

TEST_CASE("Fault injection: a crash after any quarantine step leaves the file in place or restorable, never both") {
  for (Step step : {Step::kDataWritten, Step::kRecordPending, Step::kOriginalUnlinked}) {
    DYNAMIC_SECTION("crash after step " << static_cast<int>(step)) {
      TempDir dir;
      std::string victim = dir.Write("x.bin", Eicar());
      std::string vault_dir = dir.path() + "/vault";
      CrashAfter(step, vault_dir, [&](Vault& v) { (void)v.Quarantine(victim, -1, "D", "v"); });
      auto vault = OpenVault(vault_dir);
      auto items = vault->List();
      REQUIRE(items.ok());
      const bool in_place = Exists(victim);
      CHECK(in_place != (items->size() == 1));  // exactly one of the two
      CHECK(items->size() <= 1);
      if (!in_place) {
        CHECK((*items)[0].state == "quarantined");
        REQUIRE(vault->Restore((*items)[0].id, {}).ok());
        CHECK(*ReadFileToString(victim) == Eicar());
      }
      // No leftovers: only the key and the files of live items remain.
      size_t files = 0;
      for (auto& e : std::filesystem::directory_iterator(vault_dir)) files += e.is_regular_file() ? 1 : 0;
      CHECK(files == 1 + 2 * vault->List()->size());
    }
  }
}

TEST_CASE("Fault injection: a crash after any restore step leaves the file restored or still in the vault") {
  for (Step step : {Step::kRecordRestoring, Step::kTargetWritten, Step::kTargetLinked}) {
    DYNAMIC_SECTION("crash after step " << static_cast<int>(step)) {
      TempDir dir;
      std::string victim = dir.Write("d/x.bin", Eicar());
      std::string vault_dir = dir.path() + "/vault";
      std::string id;
      {
        auto vault = OpenVault(vault_dir);
        auto rec = vault->Quarantine(victim, -1, "D", "v");
        REQUIRE(rec.ok());
        id = rec->id;
      }
      CrashAfter(step, vault_dir, [&](Vault& v) { (void)v.Restore(id, {}); });
      auto vault = OpenVault(vault_dir);
      auto items = vault->List();
      REQUIRE(items.ok());
      const bool in_place = Exists(victim);
      CHECK(in_place != (items->size() == 1));
      if (in_place) CHECK(*ReadFileToString(victim) == Eicar());
      else CHECK((*items)[0].state == "quarantined");
      // No temporary file is left beside the target.
      for (auto& e : std::filesystem::directory_iterator(dir.path() + "/d")) {
        CHECK(e.path().filename().string().rfind(".mamori-restore-", 0) != 0);
      }
    }
  }
}

TEST_CASE("Records round-trip, with odd bytes in paths, and damaged ones are refused") {
  Record r;
  r.id = std::string(32, 'a');
  r.state = "quarantined";
  r.original_path = "/tmp/we%ird\nname\x01";
  r.sha256 = std::string(64, 'b');
  r.detection = "X";
  auto back = ParseRecord(SerializeRecord(r), "t");
  REQUIRE(back.ok());
  CHECK(back->original_path == r.original_path);
  CHECK(!ParseRecord("format=1\nid=zz\n", "t").ok());
  CHECK(!ParseRecord("format=2\n", "t").ok());
}

}  // namespace
}  // namespace mamori::quarantine
