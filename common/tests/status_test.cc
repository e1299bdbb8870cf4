#include <catch2/catch.hpp>

#include <cerrno>

#include "mamori/common/status.h"

namespace mamori {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgumentError("not positive: " + std::to_string(v));
  return v;
}

Status Chain(int v, int* out) {
  auto r = ParsePositive(v);
  MAMORI_RETURN_IF_ERROR(r);
  *out = *r;
  return Status::Ok();
}

TEST_CASE("Status renders code name and message") {
  CHECK(Status().ToString() == "OK");
  CHECK(NotFoundError("x").ToString() == "NOT_FOUND: x");
  CHECK(InvalidArgumentError("bad").WithContext("rules.yar:3").ToString() ==
        "INVALID_ARGUMENT: rules.yar:3: bad");
}

TEST_CASE("Result carries a value or an error, and RETURN_IF_ERROR propagates it") {
  int out = 0;
  CHECK(Chain(5, &out).ok());
  CHECK(out == 5);
  Status s = Chain(-1, &out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == "not positive: -1");
}

TEST_CASE("ErrnoError maps errno to codes that tell whether retrying helps") {
  CHECK(ErrnoError(ENOENT, "open a").code() == StatusCode::kNotFound);
  CHECK(ErrnoError(EACCES, "open a").code() == StatusCode::kPermissionDenied);
  CHECK(ErrnoError(EAGAIN, "read").code() == StatusCode::kUnavailable);
  CHECK(ErrnoError(ENOENT, "open a").message().rfind("open a: ", 0) == 0);
}

}  // namespace
}  // namespace mamori
