// Lexical path normalisation and watched-prefix matching.
#include "path_filter.h"

#include <catch2/catch.hpp>

namespace mamori::behavior::linux_sensors {
namespace {

TEST_CASE("path filter: NormalizePath collapses //, . and .. without touching the file system") {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"/", "/"},
      {"//", "/"},
      {"/a/b", "/a/b"},
      {"/a//b/", "/a/b"},
      {"/a/./b", "/a/b"},
      {"/a/../b", "/b"},
      {"/../../etc/passwd", "/etc/passwd"},
      {"/tmp/w/./x/../y", "/tmp/w/y"},
      {"/a/b/..", "/a"},
      {"/a/...", "/a/..."},
      {"relative/x", "relative/x"},
  };
  for (const Case& c : cases) {
    INFO(c.in);
    CHECK(NormalizePath(c.in) == c.out);
  }
}

TEST_CASE("path filter: a prefix covers itself and what is below it, not siblings that share its start") {
  auto f = PrefixFilter::Create({"/tmp/watched/", "/etc"}, 16, 248);
  REQUIRE(f.ok());
  CHECK(f->prefixes() == std::vector<std::string>{"/tmp/watched", "/etc"});
  CHECK(f->Matches("/tmp/watched"));
  CHECK(f->Matches("/tmp/watched/a/b"));
  CHECK(f->Matches("/etc/passwd"));
  CHECK_FALSE(f->Matches("/tmp/watchedness"));
  CHECK_FALSE(f->Matches("/etcetera"));
  CHECK_FALSE(f->Matches("/tmp"));
  CHECK_FALSE(f->Matches("/"));

  auto root = PrefixFilter::Create({"/"}, 16, 248);
  REQUIRE(root.ok());
  CHECK(root->Matches("/anything"));
  auto none = PrefixFilter::Create({}, 16, 248);
  REQUIRE(none.ok());
  CHECK(none->Matches("/anything"));
}

TEST_CASE("path filter: invalid prefixes are rejected with the reason") {
  CHECK(PrefixFilter::Create({"tmp"}, 16, 248).status().code() == StatusCode::kInvalidArgument);
  CHECK(PrefixFilter::Create({""}, 16, 248).status().code() == StatusCode::kInvalidArgument);
  CHECK(PrefixFilter::Create({"/" + std::string(248, 'x')}, 16, 248).status().code() == StatusCode::kInvalidArgument);
  CHECK(PrefixFilter::Create(std::vector<std::string>(17, "/a"), 16, 248).status().code() ==
        StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mamori::behavior::linux_sensors
