// What the server fuzzers share: a ServiceContext over a real SQLite store
// in a temp folder (removed at exit), metrics and a SIEM forwarder. One per
// fuzzing process (a function-local static in the fuzzer).
//
// Thread safety: none needed; libFuzzer calls one input at a time.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "mamori/server/config.h"
#include "mamori/server/metrics.h"
#include "mamori/server/siem.h"
#include "mamori/server/sqlite_store.h"
#include "service_context.h"

namespace mamori::server::fuzzing {

struct ServerFuzzContext {
  std::string dir;
  ServerConfig config;
  std::unique_ptr<Store> store;
  std::unique_ptr<SiemForwarder> siem;
  ServerMetrics metrics;
  ServiceContext svc;

  // `dir_template`: mkdtemp template, e.g. "/tmp/mamori-fuzz-ingest-XXXXXX".
  // Aborts on any set-up failure (a broken harness must not look like a clean run).
  ServerFuzzContext(std::string dir_template, const std::vector<SiemOutputConfig>& siem_outputs) {
    std::vector<char> tmpl(dir_template.begin(), dir_template.end());
    tmpl.push_back('\0');
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir = tmpl.data();
    SqliteStoreOptions so;
    so.path = dir + "/store.db";
    so.durable_commits = false;
    auto s = OpenSqliteStore(so);
    if (!s.ok()) std::abort();
    store = std::move(*s);
    auto f = SiemForwarder::Open(siem_outputs);
    if (!f.ok()) std::abort();
    siem = std::move(*f);
    svc.config = &config;
    svc.store = store.get();
    svc.metrics = &metrics;
    svc.siem = siem.get();
  }
  ~ServerFuzzContext() {
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

}  // namespace mamori::server::fuzzing
