#include "telemetry_service.h"

#include <grpc/grpc.h>

#include <algorithm>
#include <chrono>

#include "mamori/common/file_util.h"
#include "mamori/common/log.h"
#include "mamori/telemetry/convert.h"

namespace mamori::agent {

TelemetryService::TelemetryService(const AgentConfig& c) : config_(c) { grpc_init(); }

TelemetryService::~TelemetryService() {
  Stop();
  // Ours is the last reference once the uplink is gone: gRPC then cleans up
  // here, synchronously, instead of on one of its own threads racing the
  // process exit (LeakSanitizer saw TLS sessions and OpenSSL thread state of
  // still-running gRPC executor threads).
  grpc_shutdown_blocking();
}

Result<std::unique_ptr<TelemetryService>> TelemetryService::Create(const AgentConfig& c) {
  if (c.telemetry_insecure) {
    for (const auto& s : c.telemetry_servers) {
      if (!telemetry::IsLoopbackAddress(s)) {
        return Status(StatusCode::kInvalidArgument,
                      "telemetry.insecure is only allowed with loopback servers, not " + s);
      }
    }
  }
  std::unique_ptr<TelemetryService> t(new TelemetryService(c));
  telemetry::SpoolOptions so;
  so.dir = c.data_dir + "/spool";
  so.max_bytes = c.telemetry_spool_max_bytes;
  auto spool = telemetry::Spool::Open(so);
  if (!spool.ok()) return spool.status().WithContext("telemetry spool");
  t->spool_ = std::move(*spool);
  t->writer_ = std::make_unique<telemetry::EventWriter>(t->spool_.get());
  return t;
}

Result<telemetry::AgentCredentials> TelemetryService::Credentials() {
  const std::string key_dir = config_.data_dir + "/keys";
  auto creds = telemetry::LoadCredentials(key_dir);
  if (creds.ok()) return creds;
  // Plaintext (loopback tests only) still enrolls: the server accepts only
  // enrolled, unrevoked agent ids; there is just no CA to pin.
  std::string ca_pem;
  if (!config_.telemetry_insecure) {
    auto ca = ReadFileToString(config_.telemetry_ca_cert);
    if (!ca.ok()) return ca.status().WithContext("telemetry.ca_cert");
    ca_pem = *ca;
  }
  if (config_.telemetry_token_file.empty()) {
    return Status(StatusCode::kFailedPrecondition,
                  "not enrolled and no telemetry.enrollment_token_file to enroll with");
  }
  auto token = ReadFileToString(config_.telemetry_token_file);
  if (!token.ok()) return token.status().WithContext("telemetry.enrollment_token_file");
  std::string tok = *token;
  while (!tok.empty() && (tok.back() == '\n' || tok.back() == '\r' || tok.back() == ' ')) tok.pop_back();
  Status last(StatusCode::kUnavailable, "no server");
  for (const auto& server : config_.telemetry_servers) {
    telemetry::EnrollOptions eo;
    eo.server = server;
    eo.ca_certificate_pem = ca_pem;
    eo.insecure = config_.telemetry_insecure;
    eo.token = tok;
    eo.key_dir = key_dir;
    eo.agent = agent_info_ ? agent_info_() : v1::AgentInfo();
    auto e = telemetry::Enroll(eo);
    if (e.ok()) {
      MAMORI_LOG(kInfo, "telemetry: enrolled with " << server << " as agent " << e->agent_id);
      return telemetry::LoadCredentials(key_dir);
    }
    last = e.status().WithContext(server);
  }
  return last;
}

Status TelemetryService::Start(std::function<v1::AgentInfo()> agent_info,
                               std::function<bool(const v1::Command&)> on_command) {
  agent_info_ = std::move(agent_info);
  on_command_ = std::move(on_command);
  thread_ = std::thread([this] { ConnectLoop(); });
  return Status::Ok();
}

void TelemetryService::ConnectLoop() {
  auto delay = std::chrono::milliseconds(1000);
  while (true) {
    auto creds = Credentials();
    if (creds.ok()) {
      telemetry::UplinkOptions uo;
      uo.servers = config_.telemetry_servers;
      uo.credentials = *creds;
      uo.insecure = config_.telemetry_insecure;
      if (!uo.insecure) {
        uo.renew_key_dir = config_.data_dir + "/keys";
        uo.renew_after_fraction = static_cast<double>(config_.telemetry_renew_certificate_at_percent) / 100.0;
      }
      auto compression = telemetry::CompressionFromName(config_.telemetry_compression);
      if (compression.ok()) uo.compression = *compression;
      uo.agent_info = agent_info_;
      uo.on_command = on_command_;
      auto uplink = telemetry::Uplink::Create(uo, spool_.get());
      Status started = uplink.ok() ? (*uplink)->Start() : uplink.status();
      if (started.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) {
          (*uplink)->Stop();
          return;
        }
        uplink_ = std::move(*uplink);
        agent_id_ = creds->agent_id;
        waiting_reason_.clear();
        return;  // the uplink reconnects by itself from here on
      }
      creds = started;
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (waiting_reason_ != creds.status().message()) {
        MAMORI_LOG(kWarning, "telemetry: " << creds.status().message() << "; events stay in the spool, retrying");
      }
      waiting_reason_ = creds.status().message();
      if (cv_.wait_for(lock, delay, [&] { return stopping_; })) return;
    }
    delay = std::min<std::chrono::milliseconds>(delay * 2, std::chrono::milliseconds(60000));
  }
}

void TelemetryService::Stop() {
  std::unique_ptr<telemetry::Uplink> uplink;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    uplink = std::move(uplink_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (uplink) uplink->Stop();
  if (spool_) (void)spool_->Sync();
}

std::string TelemetryService::StatusLine() const {
  auto ss = spool_->GetStats();
  std::string spool = "spool " + std::to_string(ss.next_sequence - 1 - std::min(ss.next_sequence - 1, ss.acked_sequence)) +
                      " events waiting (" + std::to_string(ss.bytes >> 10) + " KiB)";
  std::lock_guard<std::mutex> lock(mu_);
  if (!uplink_) return "telemetry    not connected (" + waiting_reason_ + "), " + spool;
  auto us = uplink_->stats();
  std::string out = "telemetry    " + std::string(us.connected ? "connected to " : "connecting to ") + us.server +
                    " as " + agent_id_ + ": " + std::to_string(us.events_sent) + " sent, acked " +
                    std::to_string(us.acked_sequence) + ", " + spool;
  if (!us.connected && !us.last_error.ok()) out += " (last error: " + us.last_error.message() + ")";
  if (us.certificate_not_after_ns > 0) {
    const int64_t days = (us.certificate_not_after_ns - telemetry::NowNs()) / (int64_t{86'400} * 1'000'000'000);
    out += "; certificate valid " + std::to_string(days) + " more days";
    if (us.renewals > 0) out += " (renewed " + std::to_string(us.renewals) + "x)";
    if (!us.last_renewal_error.ok()) out += ", last renewal failed: " + us.last_renewal_error.message();
  }
  return out;
}

}  // namespace mamori::agent
