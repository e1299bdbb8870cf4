#include <catch2/catch.hpp>

#include <cstdio>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mamori/agent/control.h"
#include "test_util.h"

namespace mamori::agent {
namespace {

TEST_CASE("Control socket round-trips requests with odd characters and streams the reply") {
  testing::TempDir dir;
  std::string sock = dir.path() + "/run/agent.sock";
  auto server = ControlServer::Start(sock, {::getuid()},
                                     [](const ControlPeer& peer, const std::vector<std::string>& req, ControlReply& r) {
                                       r.Out("uid " + std::to_string(peer.uid));
                                       for (const auto& a : req) r.Out("[" + a + "]");
                                       r.Err("a warning");
                                       return 3;
                                     });
  REQUIRE(server.ok());
  struct stat st {};
  REQUIRE(::stat(sock.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::vector<std::string> out, err;
  auto code = ControlCall(sock, {"scan", "/tmp/a\tb\nc\\d"}, [&](const std::string& l) { out.push_back(l); },
                          [&](const std::string& l) { err.push_back(l); });
  REQUIRE(code.ok());
  CHECK(*code == 3);
  REQUIRE(out.size() == 3);
  CHECK(out[1] == "[scan]");
  CHECK(out[2] == "[/tmp/a\tb\nc\\d]");
  CHECK(err == std::vector<std::string>{"a warning"});
  (*server)->Stop();
  CHECK(!ControlCall(sock, {"status"}, [](const std::string&) {}, [](const std::string&) {}).ok());
}

TEST_CASE("Control socket refuses peers whose uid is not allowed") {
  testing::TempDir dir;
  std::string sock = dir.path() + "/agent.sock";
  bool called = false;
  auto server = ControlServer::Start(sock, {12345},  // not us
                                     [&](const ControlPeer&, const std::vector<std::string>&, ControlReply&) {
                                       called = true;
                                       return 0;
                                     });
  REQUIRE(server.ok());
  std::vector<std::string> err;
  auto code = ControlCall(sock, {"status"}, [](const std::string&) {}, [&](const std::string& l) { err.push_back(l); });
  REQUIRE(code.ok());
  CHECK(*code == 77);
  CHECK(!called);
  REQUIRE(!err.empty());
  CHECK(err[0].find("permission denied") != std::string::npos);
}

TEST_CASE("Control socket refusal reaches a peer that sends its request late") {
  // The refusal must not depend on who is faster: before the fix the agent answered and
  // closed at once, and a client whose request arrived after that got EPIPE or a reset.
  testing::TempDir dir;
  std::string sock = dir.path() + "/agent.sock";
  auto server = ControlServer::Start(sock, {12345}, [](const ControlPeer&, const std::vector<std::string>&,
                                                       ControlReply&) { return 0; });
  REQUIRE(server.ok());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::usleep(200 * 1000);
  REQUIRE(::send(fd, "status\n", 7, MSG_NOSIGNAL) == 7);
  std::string reply;
  char buf[512];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  ::close(fd);
  CHECK(n == 0);  // an orderly close, not a reset
  CHECK(reply.find("err permission denied") != std::string::npos);
  CHECK(reply.find("exit 77\n") != std::string::npos);
}

}  // namespace
}  // namespace mamori::agent
