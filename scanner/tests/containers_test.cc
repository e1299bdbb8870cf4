#include <catch2/catch.hpp>

#include "containers.h"
#include "test_util.h"

namespace mamori::scanner::internal {
namespace {

TEST_CASE("SniffContainer recognizes archive and compressor magic and nothing else") {
  using testing::MakeArchive;
  CHECK(SniffContainer(MakeArchive("zip", {{"a", "b"}})) == ContainerKind::kArchive);
  CHECK(SniffContainer(MakeArchive("7zip", {{"a", "b"}})) == ContainerKind::kArchive);
  CHECK(SniffContainer(MakeArchive("tar", {{"a", "b"}})) == ContainerKind::kArchive);
  CHECK(SniffContainer(MakeArchive("cpio", {{"a", "b"}})) == ContainerKind::kArchive);
  CHECK(SniffContainer(MakeArchive("ar", {{"a", "b"}})) == ContainerKind::kArchive);
  CHECK(SniffContainer(MakeArchive("tar", {{"a", "b"}}, "gzip")) == ContainerKind::kCompressedStream);
  CHECK(SniffContainer(MakeArchive("tar", {{"a", "b"}}, "xz")) == ContainerKind::kCompressedStream);
  CHECK(SniffContainer(MakeArchive("tar", {{"a", "b"}}, "bzip2")) == ContainerKind::kCompressedStream);
  CHECK(SniffContainer(MakeArchive("tar", {{"a", "b"}}, "zstd")) == ContainerKind::kCompressedStream);
  CHECK(SniffContainer("#!/bin/sh\necho hi\n") == ContainerKind::kNone);
  CHECK(SniffContainer("") == ContainerKind::kNone);
  CHECK(SniffContainer("P") == ContainerKind::kNone);
  CHECK(SniffContainer(std::string("\x7f" "ELF\x02\x01\x01", 7)) == ContainerKind::kNone);
}

TEST_CASE("WalkContainer names members and accounts their bytes") {
  std::string zip = testing::MakeArchive("zip", {{"a.txt", "aaaa"}, {"d/b.txt", "bb"}});
  ScanLimits limits;
  Budget budget(limits);
  std::vector<std::pair<std::string, std::string>> seen;
  WalkContainer({zip, -1, zip.size()}, ContainerKind::kArchive, "x.zip", budget,
                [&](const std::string& name, std::string_view data) { seen.emplace_back(name, std::string(data)); });
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == std::make_pair(std::string("a.txt"), std::string("aaaa")));
  CHECK(seen[1] == std::make_pair(std::string("d/b.txt"), std::string("bb")));
  CHECK(budget.members == 2);
  CHECK(budget.extracted_bytes == 6);
  CHECK(budget.incomplete.empty());
}

}  // namespace
}  // namespace mamori::scanner::internal
