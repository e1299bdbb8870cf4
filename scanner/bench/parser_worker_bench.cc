// What does the parser sandbox cost? Scans the same in-memory corpus with the
// shipped signatures in process and through a ParserPool (confined workers),
// in alternating rounds so that machine noise hits both alike, and prints the
// time per object and the ratio (not a test; results in
// bench/results/hardening.md):
//   zip    archives of text members (libarchive in the worker)
//   mail   .eml messages with a base64 zip attachment (MIME, then libarchive)
//   plain  text files: no container, never sent to a worker (control: ~1.00x)
// Reports must be identical both ways (verdict, findings, incomplete); any
// difference or lost worker makes the exit status 1.
//
//   mamori_parser_worker_bench [OBJECTS [MEMBERS [ROUNDS [SIGNATURE_DIR]]]]
#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mamori/scanner/parser_pool.h"
#include "mamori/scanner/scanner.h"
#include "mamori/scanner/signature_set.h"

namespace {

using mamori::scanner::ParserPool;
using mamori::scanner::ScanOptions;
using mamori::scanner::ScanReport;
using mamori::scanner::Scanner;

// Text-like member of 4-64 KiB from a fixed word list (deterministic).
std::string Member(uint64_t* seed) {
  static const char* kWords[] = {"invoice", "the", "payment", "of", "report", "quarterly", "and", "attached",
                                 "please", "find", "data", "42", "total", "EUR", "customer", "order"};
  auto next = [seed] {
    *seed ^= *seed << 13, *seed ^= *seed >> 7, *seed ^= *seed << 17;
    return *seed;
  };
  const size_t size = 4096 + next() % (60u << 10);
  std::string s;
  while (s.size() < size) (s += kWords[next() % 16]) += (next() % 12 == 0 ? '\n' : ' ');
  return s;
}

std::string Zip(const std::vector<std::string>& members) {
  std::vector<char> out(16u << 20);
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  archive_write_open_memory(a, out.data(), out.size(), &used);
  for (size_t i = 0; i < members.size(); ++i) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, ("doc/part" + std::to_string(i) + ".txt").c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(members[i].size()));
    archive_write_header(a, e);
    archive_write_data(a, members[i].data(), members[i].size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(out.data(), used);
}

std::string Base64(const std::string& in) {
  static const char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0, line = 0;
  auto put = [&](char c) {
    out += c;
    if (++line == 76) out += '\n', line = 0;
  };
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) put(k[(v >> s) & 63]);
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16 | (i + 1 < in.size() ? uint8_t(in[i + 1]) << 8 : 0);
    put(k[(v >> 18) & 63]);
    put(k[(v >> 12) & 63]);
    put(i + 1 < in.size() ? k[(v >> 6) & 63] : '=');
    put('=');
  }
  return out;
}

std::string Mail(const std::string& zip, int n) {
  return "From: billing@example.org\nTo: someone@example.org\nSubject: invoice " + std::to_string(n) +
         "\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\n"
         "Please find the invoice attached.\n--b1\nContent-Type: application/zip; name=\"invoice.zip\"\n"
         "Content-Transfer-Encoding: base64\n\n" +
         Base64(zip) + "\n--b1--\n";
}

std::string Key(const ScanReport& r) {
  std::string k(mamori::scanner::VerdictName(r.verdict));
  for (const auto& f : r.findings) k += "|" + f.object + "=" + f.signature;
  for (const auto& i : r.incomplete) k += "|" + i;
  return k;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  // This binary is also its own parser worker.
  if (auto code = mamori::scanner::RunParserWorkerIfRequested(argc, argv)) return *code;
  const int objects = argc > 1 ? std::atoi(argv[1]) : 200;
  const int members = argc > 2 ? std::atoi(argv[2]) : 8;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  const std::string sig_dir = argc > 4 ? argv[4] : MAMORI_SOURCE_DIR "/signatures/default";
  auto sigs = mamori::scanner::LoadSignatureDir(sig_dir);
  if (!sigs.ok()) {
    std::fprintf(stderr, "%s: %s\n", sig_dir.c_str(), sigs.status().message().c_str());
    return 2;
  }
  auto pool = ParserPool::Start({});
  if (!pool.ok()) {
    std::fprintf(stderr, "parser pool: %s\n", pool.status().message().c_str());
    return 2;
  }
  ScanOptions sandboxed;
  sandboxed.parser_pool = *pool;
  auto in_process = Scanner::Create(*sigs);
  auto confined = Scanner::Create(*sigs, sandboxed);
  if (!in_process.ok() || !confined.ok()) return 2;

  uint64_t seed = 0x9E3779B97F4A7C15ull;
  struct Corpus {
    const char* name;
    std::vector<std::string> items;
    size_t bytes = 0;
  };
  Corpus kinds[3] = {{"zip", {}}, {"mail", {}}, {"plain", {}}};
  for (int i = 0; i < objects; ++i) {
    std::vector<std::string> m;
    for (int j = 0; j < members; ++j) m.push_back(Member(&seed));
    kinds[0].items.push_back(Zip(m));
    kinds[1].items.push_back(Mail(kinds[0].items.back(), i));
    kinds[2].items.push_back(m[0] + m[1]);
  }
  for (auto& k : kinds) {
    for (const auto& s : k.items) k.bytes += s.size();
  }
  std::printf("corpus: %d objects per kind (zips of %d text members: %.1f KiB; mails with that zip attached: %.1f KiB; "
              "plain text: %.1f KiB on average); %zu hashes, YARA from %s; %d alternating rounds\n",
              objects, members, kinds[0].bytes / 1024.0 / objects, kinds[1].bytes / 1024.0 / objects,
              kinds[2].bytes / 1024.0 / objects, (*sigs)->hashes.size(), sig_dir.c_str(), rounds);

  int mismatches = 0;
  for (auto& k : kinds) {
    for (int w = 0; w < 3; ++w) {  // warm YARA, libarchive and both workers
      (*in_process)->ScanBuffer(k.items[w % k.items.size()], "warm");
      (*confined)->ScanBuffer(k.items[w % k.items.size()], "warm");
    }
    std::vector<double> ratio;
    double best_in = 1e9, best_sandboxed = 1e9;
    for (int r = 0; r < rounds; ++r) {
      std::vector<std::string> expected;
      auto t = std::chrono::steady_clock::now();
      for (const auto& item : k.items) expected.push_back(Key((*in_process)->ScanBuffer(item, "object")));
      const double a = Seconds(t);
      t = std::chrono::steady_clock::now();
      for (size_t i = 0; i < k.items.size(); ++i) {
        mismatches += Key((*confined)->ScanBuffer(k.items[i], "object")) != expected[i];
      }
      const double b = Seconds(t);
      ratio.push_back(b / a);
      best_in = std::min(best_in, a);
      best_sandboxed = std::min(best_sandboxed, b);
    }
    std::sort(ratio.begin(), ratio.end());
    const double per = 1e6 / objects;
    std::printf("%-6s in process %8.1f us/object, sandboxed %8.1f us/object (%+.1f us); ratio median %.2fx "
                "(range %.2f-%.2fx over %d rounds)\n",
                k.name, best_in * per, best_sandboxed * per, (best_sandboxed - best_in) * per,
                ratio[ratio.size() / 2], ratio.front(), ratio.back(), rounds);
  }
  auto st = (*pool)->stats();
  std::printf("report mismatches %d, worker requests %llu, workers lost %llu\n", mismatches,
              static_cast<unsigned long long>(st.requests), static_cast<unsigned long long>(st.workers_lost));
  return mismatches == 0 && st.workers_lost == 0 ? 0 : 1;
}
