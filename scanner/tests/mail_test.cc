#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "mail.h"

namespace mamori::scanner::internal {
namespace {

// Built at runtime so the signature never sits verbatim in a source file.
std::string Eicar() {
  return std::string("X5O!P%@AP[4\\PZX54(P^)7CC)7}") +
         "$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
}

std::string Base64Encode(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < data.size(); i += 3) {
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k) {
      v = v << 8 | (i + k < data.size() ? static_cast<unsigned char>(data[i + k]) : 0u);
    }
    for (size_t k = 0; k < 4; ++k) {
      out.push_back(k <= (data.size() - i) ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=');
    }
    if ((i / 3 + 1) % 19 == 0) out.push_back('\n');  // 76-column lines
  }
  return out + "\n";
}

std::string UuEncode(std::string_view data) {
  std::string out;
  for (size_t i = 0; i < data.size(); i += 45) {
    std::string_view chunk = data.substr(i, 45);
    out.push_back(static_cast<char>(' ' + chunk.size()));
    for (size_t j = 0; j < chunk.size(); j += 3) {
      uint32_t v = 0;
      for (size_t k = 0; k < 3; ++k) {
        v = v << 8 | (j + k < chunk.size() ? static_cast<unsigned char>(chunk[j + k]) : 0u);
      }
      for (int shift = 18; shift >= 0; shift -= 6) {
        uint32_t c = (v >> shift) & 63;
        out.push_back(c ? static_cast<char>(' ' + c) : '`');
      }
    }
    out.push_back('\n');
  }
  return out + "`\nend\n";
}

std::string ToCrlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out.push_back('\r');
    out.push_back(c);
  }
  return out;
}

std::vector<std::string> Names(const MailParseResult& r) {
  std::vector<std::string> names;
  for (const MailPart& p : r.parts) names.push_back(p.name);
  return names;
}

MailParseResult Parse(std::string_view data, const MailLimits& limits = {}) {
  return ParseMail(data, limits);
}

// multipart/mixed with `count` small text parts.
std::string FlatMultipart(int count) {
  std::string m =
      "From: a@example.com\nSubject: many\nMIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=sep\n\n";
  for (int i = 0; i < count; ++i) m += "--sep\n\nbody " + std::to_string(i) + "\n";
  return m + "--sep--\n";
}

TEST_CASE("ParseMail decodes a base64 attachment with its filename") {
  const std::string mail =
      "From: Alice <alice@example.com>\n"
      "To: bob@example.com\n"
      "Subject: invoice\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"==outer==\"\n"
      "\n"
      "This is a multi-part message in MIME format.\n"
      "--==outer==\n"
      "Content-Type: text/plain; charset=us-ascii\n"
      "\n"
      "Please see attached.\n"
      "--==outer==\n"
      "Content-Type: application/octet-stream; name=\"ignored.bin\"\n"
      "Content-Transfer-Encoding: base64\n"
      "Content-Disposition: attachment; filename=\"eicar.com\"\n"
      "\n" +
      Base64Encode(Eicar()) +
      "--==outer==--\n"
      "epilogue is not a part\n";
  const MailParseResult r = Parse(mail);
  CHECK(r.incomplete.empty());
  REQUIRE(Names(r) == std::vector<std::string>{"part-1", "eicar.com"});
  CHECK(r.parts[0].data == "Please see attached.");
  CHECK(r.parts[1].data == Eicar());
}

TEST_CASE("ParseMail tolerates base64 without padding and with junk characters") {
  const std::string mail =
      "Content-Type: application/octet-stream; name=x.bin\n"
      "Content-Transfer-Encoding: BASE64\n\n"
      "SGVs*bG8g\n d29y!bGQ\n";  // "Hello world", no padding
  const MailParseResult r = Parse(mail);
  CHECK(r.incomplete.empty());
  REQUIRE(r.parts.size() == 1);
  CHECK(r.parts[0].name == "x.bin");
  CHECK(r.parts[0].data == "Hello world");
}

TEST_CASE("ParseMail flags base64 cut in the middle of a quantum as corrupt") {
  const std::string mail =
      "Content-Type: application/octet-stream\n"
      "Content-Transfer-Encoding: base64\n\n"
      "SGVsbG8gd29ybGQh\nS";
  const MailParseResult r = Parse(mail);
  REQUIRE(r.parts.size() == 1);
  CHECK(r.parts[0].data == "Hello world!");
  CHECK(r.incomplete.rfind("corrupt", 0) == 0);
}

TEST_CASE("ParseMail decodes a quoted-printable body") {
  const std::string mail =
      "Subject: qp\n"
      "Content-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: quoted-printable\n"
      "\n"
      "caf=C3=A9 na=c3=afve, 1+1=3D2, bad =ZZ escape =\n"
      "joined   \n"
      "soft with spaces=  \n"
      "end=\n";
  const MailParseResult r = Parse(mail);
  CHECK(r.incomplete.empty());
  REQUIRE(r.parts.size() == 1);
  CHECK(r.parts[0].name == "part-1");
  CHECK(r.parts[0].data ==
        "caf\xC3\xA9 na\xC3\xAFve, 1+1=2, bad =ZZ escape joined\nsoft with spacesend");
}

TEST_CASE("ParseMail walks multipart/mixed nested inside multipart/alternative") {
  const std::string mail =
      "From: a@example.com\n"
      "Content-Type: multipart/alternative; boundary=alt\n"
      "\n"
      "--alt\n"
      "Content-Type: text/plain\n"
      "\n"
      "plain version\n"
      "--alt\n"
      "Content-Type: multipart/mixed; boundary=\"mix\"\n"
      "\n"
      "--mix\n"
      "Content-Type: text/html\n"
      "\n"
      "<p>html version</p>\n"
      "--mix\n"
      "Content-Type: application/x-sh\n"
      "Content-Disposition: attachment; filename=run.sh\n"
      "\n"
      "#!/bin/sh\necho hi\n"
      "--mix--\n"
      "--alt--\n";
  const MailParseResult r = Parse(mail);
  CHECK(r.incomplete.empty());
  REQUIRE(Names(r) == std::vector<std::string>{"part-1", "part-2", "run.sh"});
  CHECK(r.parts[0].data == "plain version");
  CHECK(r.parts[1].data == "<p>html version</p>");
  CHECK(r.parts[2].data == "#!/bin/sh\necho hi");
}

TEST_CASE("ParseMail ignores lines that merely start with the boundary") {
  const std::string mail =
      "Content-Type: multipart/mixed; boundary=b\n\n"
      "--b\n\none\n--bb\nstill one\n--b  \n\ntwo\n--b--\n";
  const MailParseResult r = Parse(mail);
  CHECK(r.incomplete.empty());
  REQUIRE(r.parts.size() == 2);
  CHECK(r.parts[0].data == "one\n--bb\nstill one");
  CHECK(r.parts[1].data == "two");
}

TEST_CASE("ParseMail skips the empty parts of back-to-back delimiters") {
  const MailParseResult r =
      Parse("Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\none\n--b\n--b\n--b--\n");
  CHECK(r.incomplete.empty());
  REQUIRE(Names(r) == std::vector<std::string>{"part-1"});
  CHECK(r.parts[0].data == "one");
}

TEST_CASE("ParseMail recurses into a message/rfc822 attachment and its attachment") {
  const std::string inner =
      "From: c@example.com\n"
      "Subject: original\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=inner\n"
      "\n"
      "--inner\n"
      "Content-Type: text/plain\n"
      "\n"
      "inner text\n"
      "--inner\n"
      "Content-Type: application/zip; name=\"payload.zip\"\n"
      "Content-Transfer-Encoding: base64\n"
      "\n" +
      Base64Encode("PK\x03\x04 fake zip") + "--inner--\n";
  const std::string mail =
      "From: b@example.com\n"
      "Subject: Fwd: original\n"
      "Content-Type: multipart/mixed; boundary=outer\n"
      "\n"
      "--outer\n"
      "Content-Type: text/plain\n"
      "\n"
      "see forwarded\n"
      "--outer\n"
      "Content-Type: message/rfc822\n"
      "Content-Disposition: attachment; filename=fwd.eml\n"
      "\n" +
      inner + "--outer--\n";
  const MailParseResult r = Parse(mail);
  CHECK(r.incomplete.empty());
  REQUIRE(Names(r) == std::vector<std::string>{"part-1", "part-2", "payload.zip"});
  CHECK(r.parts[1].data == "inner text");
  CHECK(r.parts[2].data == std::string("PK\x03\x04 fake zip"));
}

TEST_CASE("ParseMail treats multipart/digest members as messages by default") {
  const std::string mail =
      "Content-Type: multipart/digest; boundary=d\n\n"
      "--d\n\nSubject: first\n\nbody one\n"
      "--d\n\nSubject: second\nContent-Type: text/plain; name=two.txt\n\nbody two\n"
      "--d--\n";
  const MailParseResult r = Parse(mail);
  CHECK(r.incomplete.empty());
  REQUIRE(Names(r) == std::vector<std::string>{"part-1", "two.txt"});
  CHECK(r.parts[0].data == "body one");
  CHECK(r.parts[1].data == "body two");
}

TEST_CASE("ParseMail splits an mbox into messages prefixed msg-K/") {
  const std::string mbox =
      "From alice@example.com Mon Jan  1 10:00:00 2024\n"
      "From: alice@example.com\n"
      "Subject: one\n"
      "\n"
      "first body\n"
      "From here a line that is not a separator\n"
      "\n"
      ">From quoted line stays quoted\n"
      "\n"
      "From bob@example.com Tue Jan  2 11:00:00 2024\n"
      "From: bob@example.com\n"
      "Subject: two\n"
      "Content-Type: multipart/mixed; boundary=x\n"
      "\n"
      "--x\n"
      "Content-Disposition: attachment; filename=a.txt\n"
      "\n"
      "attached\n"
      "--x--\n"
      "\n"
      "From carol@example.com Wed Jan  3 12:00:00 2024\n"
      "Subject: three\n"
      "\n"
      "third body\n";
  const MailParseResult r = Parse(mbox);
  CHECK(r.incomplete.empty());
  REQUIRE(Names(r) == std::vector<std::string>{"msg-1/part-1", "msg-2/a.txt", "msg-3/part-1"});
  CHECK(r.parts[0].data ==
        "first body\nFrom here a line that is not a separator\n\n"
        ">From quoted line stays quoted\n");
  CHECK(r.parts[1].data == "attached");
  CHECK(r.parts[2].data == "third body\n");
}

TEST_CASE("ParseMail does not prefix a single-message mbox") {
  const MailParseResult r = Parse("From a@b Mon Jan  1 10:00:00 2024\nSubject: x\n\nonly\n");
  REQUIRE(Names(r) == std::vector<std::string>{"part-1"});
  CHECK(r.parts[0].data == "only\n");
}

TEST_CASE("ParseMail extracts a uuencoded attachment from an mbox message") {
  const std::string mbox =
      "From a@example.com Mon Jan  1 10:00:00 2024\n"
      "Subject: plain\n\nnothing here\n\n"
      "From b@example.com Mon Jan  1 10:05:00 2024\n"
      "From: b@example.com\n"
      "Subject: old style attachment\n"
      "\n"
      "Here is the file, begin 644 is how it starts:\n"
      "\n"
      "begin 644 test.com\n" +
      UuEncode(Eicar()) +
      "\n"
      "begin 600 cat.txt\n"
      "#0V%T\n"
      "`\n"
      "end\n"
      "bye\n";
  const MailParseResult r = Parse(mbox);
  CHECK(r.incomplete.empty());
  REQUIRE(Names(r) == std::vector<std::string>{"msg-1/part-1", "msg-2/part-1", "msg-2/test.com",
                                               "msg-2/cat.txt"});
  CHECK(r.parts[2].data == Eicar());
  CHECK(r.parts[3].data == "Cat");
}

TEST_CASE("ParseMail flags a uuencoded block without its end as corrupt") {
  const std::string mail = "Subject: x\n\nbegin 644 cut.bin\n" + UuEncode(Eicar()).substr(0, 62);
  const MailParseResult r = Parse(mail);
  REQUIRE(r.parts.size() == 2);
  CHECK(r.parts[1].name == "cut.bin");
  CHECK_FALSE(r.parts[1].data.empty());
  CHECK(r.incomplete.rfind("corrupt", 0) == 0);
}

TEST_CASE("ParseMail handles CRLF line endings") {
  const std::string mail = ToCrlf(
      "From: a@example.com\n"
      "Subject: crlf\n"
      "Content-Type: multipart/mixed;\n"
      "\tboundary=\"crlf-b\"\n"
      "\n"
      "--crlf-b\n"
      "Content-Type: text/plain\n"
      "Content-Transfer-Encoding: quoted-printable\n"
      "\n"
      "line one=\n"
      " continued\n"
      "line two\n"
      "--crlf-b\n"
      "Content-Type: application/octet-stream\n"
      "Content-Transfer-Encoding: base64\n"
      "Content-Disposition: attachment;\n"
      " filename=\"crlf.bin\"\n"
      "\n" +
      Base64Encode(Eicar()) + "--crlf-b--\n");
  const MailParseResult r = Parse(mail);
  CHECK(r.incomplete.empty());
  REQUIRE(Names(r) == std::vector<std::string>{"part-1", "crlf.bin"});
  CHECK(r.parts[0].data == "line one continued\r\nline two");
  CHECK(r.parts[1].data == Eicar());
}

TEST_CASE("ParseMail decodes RFC 2047 and RFC 2231 file names") {
  const std::string mail =
      "Content-Type: multipart/mixed; boundary=n\n\n"
      "--n\n"
      "Content-Disposition: attachment;\n"
      " filename=\"=?UTF-8?B?cmFwcG9ydA==?= =?utf-8?Q?_=C3=A9t=C3=A9.pdf?=\"\n\nA\n"
      "--n\n"
      "Content-Disposition: attachment; filename*=utf-8''na%C3%AFve%20file.txt\n\nB\n"
      "--n\n"
      "Content-Disposition: attachment; filename*0*=utf-8''caf%C3%A9-;\n"
      " filename*1=\"long.doc\"; filename=fallback.doc\n\nC\n"
      "--n\n"
      "Content-Type: application/octet-stream; name=\"..\\\\dir\\\\evil.exe\"\n\nD\n"
      "--n\n"
      "Content-Disposition: attachment; filename=\"/etc/passwd\"\n\nE\n"
      "--n--\n";
  const MailParseResult r = Parse(mail);
  CHECK(r.incomplete.empty());
  REQUIRE(Names(r) == std::vector<std::string>{"rapport \xC3\xA9t\xC3\xA9.pdf",
                                               "na\xC3\xAFve file.txt", "caf\xC3\xA9-long.doc",
                                               "evil.exe", "passwd"});
}

TEST_CASE("ParseMail stops at max_parts with incomplete member-count") {
  MailLimits limits;
  limits.max_parts = 2;
  const MailParseResult r = Parse(FlatMultipart(5), limits);
  CHECK(r.incomplete == "member-count");
  REQUIRE(r.parts.size() == 2);
  CHECK(r.parts[1].data == "body 1");

  limits.max_parts = 5;  // exactly enough is not a limit hit
  CHECK(Parse(FlatMultipart(5), limits).incomplete.empty());
}

TEST_CASE("ParseMail stops at max_total_bytes with incomplete total-size") {
  MailLimits limits;
  limits.max_total_bytes = 13;  // "body 0" + "body 1" fit, "body 2" does not
  const MailParseResult r = Parse(FlatMultipart(5), limits);
  CHECK(r.incomplete == "total-size");
  CHECK(Names(r) == std::vector<std::string>{"part-1", "part-2"});
}

TEST_CASE("ParseMail stops at max_depth with incomplete depth") {
  const std::string mail =
      "Content-Type: multipart/mixed; boundary=l1\n\n"
      "--l1\n\nshallow\n"
      "--l1\n"
      "Content-Type: multipart/mixed; boundary=l2\n\n"
      "--l2\n"
      "Content-Type: message/rfc822\n\n"
      "Subject: deepest\n\ndeep text\n"
      "--l2--\n"
      "--l1\n\nafter\n"
      "--l1--\n";
  MailLimits limits;
  CHECK(Parse(mail, limits).parts.size() == 3);
  CHECK(Parse(mail, limits).incomplete.empty());

  limits.max_depth = 2;  // the message/rfc822 would be a third level
  MailParseResult r = Parse(mail, limits);
  CHECK(r.incomplete == "depth");
  CHECK(Names(r) == std::vector<std::string>{"part-1", "part-2"});
  CHECK(r.parts[1].data == "after");

  limits.max_depth = 0;
  r = Parse(mail, limits);
  CHECK(r.incomplete == "depth");
  CHECK(r.parts.empty());
}

TEST_CASE("ParseMail keeps parts before a missing closing boundary and flags corrupt") {
  const std::string mail =
      "Content-Type: multipart/mixed; boundary=open\n\n"
      "--open\n\nfirst\n"
      "--open\n"
      "Content-Type: application/octet-stream; name=cut.bin\n"
      "Content-Transfer-Encoding: base64\n\n"
      "SGVsbG8gd29y\n";
  const MailParseResult r = Parse(mail);
  CHECK(r.incomplete.rfind("corrupt:", 0) == 0);
  REQUIRE(Names(r) == std::vector<std::string>{"part-1", "cut.bin"});
  CHECK(r.parts[1].data == "Hello wor");
}

TEST_CASE("ParseMail keeps the body of a multipart whose boundary never appears") {
  const MailParseResult r =
      Parse("Content-Type: multipart/mixed; boundary=zz\n\nno parts at all\n");
  CHECK(r.incomplete.rfind("corrupt:", 0) == 0);
  REQUIRE(r.parts.size() == 1);
  CHECK(r.parts[0].data == "no parts at all\n");
}

TEST_CASE("ParseMail returns a non-MIME text file as one part") {
  MailParseResult r = Parse("just some text\nwith: a colon later\n");
  REQUIRE(r.parts.size() == 1);
  CHECK(r.parts[0].data == "just some text\nwith: a colon later\n");
  CHECK(Parse("").parts.empty());
}

TEST_CASE("LooksLikeMail recognizes mail and rejects other text") {
  struct Case {
    const char* what;
    std::string data;
    bool expected;
  };
  const std::string big_received =
      "Received: from mx.example.com by mail.example.org;\n" + std::string(5000, ' ') + "\n";
  const std::vector<Case> cases = {
      {"mbox", "From alice@example.com Mon Jan  1 10:00:00 2024\nFrom: alice\n\nhi\n", true},
      {"git format-patch",
       "From 3f2a1b Mon Sep 17 00:00:00 2001\nFrom: Dev <d@x.org>\nDate: Tue, 1 Jan 2024\n"
       "Subject: [PATCH] fix\n\n---\n",
       true},
      {"rfc822", "Return-Path: <a@b>\nReceived: from x\n\tby y\nSubject: hi\n\nbody\n", true},
      {"rfc822 crlf", ToCrlf("From: a@b.c\nTo: d@e.f\nSubject: s\n\nbody\n"), true},
      {"mime only headers plus subject",
       "MIME-Version: 1.0\nContent-Type: text/plain\nSubject: x\n\nb\n", true},
      {"headers past the sniff window", "From: a@b\n" + big_received, true},
      {"debian control",
       "Package: libfoo\nVersion: 1.2-3\nArchitecture: amd64\nMaintainer: A <a@b>\n"
       "Depends: libc6\nDescription: foo\n bar\n",
       false},
      {"debian changes", "Format: 1.8\nDate: Mon, 01 Jan 2024\nSource: foo\n", false},
      {"c file", "#include <stdio.h>\n\nint main(void) {\n  return 0;\n}\n", false},
      {"shell script", "#!/bin/sh\nset -e\nFrom=me\necho \"To: $From\"\n", false},
      {"yaml", "name: CI\non:\n  push:\n    branches: [main]\njobs:\n  build:\n", false},
      {"yaml with mail-like keys", "from: alice\nto: bob\nsubject: hello\n", false},
      {"http response",
       "HTTP/1.1 200 OK\nDate: Mon, 01 Jan 2024\nContent-Type: text/html\n\n<html>\n", false},
      {"http-like header dump", "Date: Mon, 01 Jan 2024\nContent-Type: text/html\n\n", false},
      {"bare mime document",
       "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\n", true},
      {"prose starting with From", "From the author of many books\nSubject: none\n", false},
      {"single mail header", "Subject: hello\n\ntext\n", false},
      {"empty", "", false},
      {"binary", std::string("\177ELF\2\1\1\0\0\0", 10), false},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    CHECK(LooksLikeMail(c.data) == c.expected);
  }
}

TEST_CASE("ParseMail survives random and pathological input quickly") {
  const auto start = std::chrono::steady_clock::now();
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::string alphabet = "-=?:;\"\n\r \tbegin644`MIMEContent-Type:multipart/b=x";
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  for (int round = 0; round < 300; ++round) {
    std::string data;
    const size_t size = static_cast<size_t>(byte(rng)) * 16;
    for (size_t i = 0; i < size; ++i) {
      data.push_back(round % 2 ? static_cast<char>(byte(rng)) : alphabet[pick(rng)]);
    }
    if (round % 3 == 0) data = "Content-Type: multipart/mixed; boundary=b\n\n--b\n" + data;
    LooksLikeMail(data);
    for (const MailPart& part : Parse(data).parts) REQUIRE_FALSE(part.name.empty());
  }

  // 100k delimiter lines, each part declaring itself multipart with the same
  // boundary; then 20k levels with a fresh boundary each (never closed).
  std::string same = "Content-Type: multipart/mixed; boundary=b\n\n";
  for (int i = 0; i < 100000; ++i) same += "--b\nContent-Type: multipart/mixed; boundary=b\n\n";
  std::string chain = "Content-Type: multipart/mixed; boundary=b0\n\n";
  for (int i = 0; i < 20000; ++i) {
    chain += "--b" + std::to_string(i) + "\nContent-Type: multipart/mixed; boundary=b" +
             std::to_string(i + 1) + "\n\n";
  }
  MailParseResult r = Parse(same);  // each empty inner multipart is corrupt
  CHECK(r.incomplete.rfind("corrupt:", 0) == 0);
  CHECK(r.parts.size() == MailLimits{}.max_parts);
  r = Parse(chain);
  CHECK(r.incomplete == "depth");

  MailLimits huge_depth;
  huge_depth.max_depth = 1 << 30;  // must not turn into unbounded recursion
  CHECK(Parse(chain, huge_depth).incomplete == "depth");

  // Message/rfc822 nested without end, mime-ish noise, and no newline at all.
  std::string russian_doll;
  for (int i = 0; i < 100000; ++i) russian_doll += "Content-Type: message/rfc822\n\n";
  CHECK(Parse(russian_doll).incomplete == "depth");
  CHECK(Parse(std::string(4 << 20, '=') + "?").parts.size() == 1);
  std::string words;
  for (int i = 0; i < 200000; ++i) words += "=?a?B?";
  CHECK(Parse("Content-Type: text/plain; name=\"" + words + "\"\n\nx").parts.size() == 1);
  std::string one_line = "Content-Transfer-Encoding: quoted-printable\n\n";
  one_line += std::string(8 << 20, 'A');
  r = Parse(one_line);
  REQUIRE(r.parts.size() == 1);
  CHECK(r.parts[0].data.size() == 8u << 20);
  CHECK_FALSE(LooksLikeMail(std::string(50 << 20, 'x')));
  std::string mbox_flood;
  for (int i = 0; i < 200000; ++i) mbox_flood += "From a Mon Jan  1 10:00:00 2024\nx\n\n";
  CHECK(Parse(mbox_flood).incomplete == "member-count");

  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < std::chrono::seconds(60));  // generous: sanitizers, shared CPU
}

}  // namespace
}  // namespace mamori::scanner::internal
