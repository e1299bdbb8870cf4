// The uplink: ships the spool to mamori-server over one long-lived
// AgentService.Connect stream (docs/telemetry-protocol.md,
// docs/telemetry-uplink.md) and receives commands on it.
//
// One thread of its own keeps the stream up:
//   connect (mTLS with the enrolled key and certificate, the server CA pinned)
//   -> Hello{spool first/last sequence} -> Welcome{acked_sequence, limits}
//   -> spool.Ack(acked_sequence) + Rewind: everything unacknowledged is resent
//   -> pipelined EventBatches (at most `max_in_flight` unanswered), each
//      BatchAck -> spool.Ack; Heartbeats every Welcome.heartbeat_interval_s;
//      Commands -> on_command, answered with CommandAck when accepted.
// A broken stream is retried with jittered exponential backoff, rotating
// through `servers` while attempts fail. Offline, the spool keeps filling
// (within its bound) and drains when a server answers again.
//
// Delivery is at-least-once from here and exactly-once in the store: a
// sequence leaves the spool only once the server has acknowledged it.
//
// Thread safety: Start, Stop and the destructor from one controlling thread;
// stats() from any thread. The callbacks in UplinkOptions run on the uplink
// thread and must not block for long.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/telemetry/enrollment.h"
#include "mamori/telemetry/spool.h"
#include "mamori/v1/command.pb.h"
#include "mamori/v1/common.pb.h"

namespace mamori::telemetry {

// kAuto: gzip to remote servers, none to loopback ones. Measured
// (bench/results/telemetry.md): gzip shrinks event batches ~10x for ~2 us
// of agent CPU per event; on loopback it only costs CPU.
enum class Compression : uint8_t { kAuto, kNone, kGzip, kDeflate };
// "auto", "none", "gzip", "deflate".
Result<Compression> CompressionFromName(std::string_view name);

struct UplinkOptions {
  // "host:port" ("[::1]:8443" for IPv6). The first is tried first; a failed
  // attempt moves to the next; a server that welcomed the agent is retried
  // first after its stream breaks.
  std::vector<std::string> servers;
  AgentCredentials credentials;  // LoadCredentials(key_dir)
  // Certificate renewal (RenewCredentials into this directory, the one the
  // credentials came from): once `renew_after_fraction` of the certificate's
  // validity has passed, the uplink renews at the server it is about to
  // use (a stream up at that moment is ended for it, then resumed with the
  // new certificate). Renewals are at least `renew_retry` apart: a failed
  // one is retried then, the old certificate serving meanwhile. Empty: never renewed (the agent needs
  // a new enrollment once it expires). Not with insecure. A Stop() during a
  // renewal call waits for it (at most welcome_timeout).
  std::string renew_key_dir;
  double renew_after_fraction = 2.0 / 3.0;
  std::chrono::milliseconds renew_retry{3'600'000};
  // Plaintext gRPC for tests against `mamori-server --insecure`: only
  // loopback servers are accepted (Create fails otherwise); the agent id
  // travels as "mamori-agent-id" metadata. Logged loudly.
  bool insecure = false;

  // Per-call gRPC compression of the agent's messages.
  Compression compression = Compression::kAuto;
  // Batches sent and not yet answered by a BatchAck.
  size_t max_in_flight = 4;
  // Batch size limits. 0: what Welcome.max_batch_events / max_batch_bytes
  // say (the server decides; 1000 events / 4 MiB when it says 0); otherwise
  // the smaller of this and the server's. One event larger than
  // max_batch_bytes still goes alone if the server's limit allows it; beyond
  // the server's limit it is declared lost (it could never be stored).
  size_t max_batch_events = 0;
  size_t max_batch_bytes = 0;
  // A partial batch goes out when nothing is in flight (low latency when
  // quiet) or once its first event has waited this long (big batches under load).
  std::chrono::milliseconds batch_delay{50};

  // Reconnect delay: initial, doubled per failed attempt up to max, each
  // multiplied by a random factor in [1 - jitter, 1 + jitter]; back to
  // initial after a healthy stream (welcomed and up for healthy_after).
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{60'000};
  double backoff_jitter = 0.2;
  std::chrono::milliseconds healthy_after{10'000};
  // After a refusal that retrying soon cannot fix (UNAUTHENTICATED,
  // PERMISSION_DENIED: revoked, FAILED_PRECONDITION) wait at least this long.
  std::chrono::milliseconds refused_backoff{60'000};
  // The stream is abandoned when no Welcome arrives within this time.
  std::chrono::milliseconds welcome_timeout{20'000};
  // Used when Welcome.heartbeat_interval_s is 0.
  std::chrono::seconds default_heartbeat_interval{30};
  // How often the uplink turns the spool's drop counts into a SensorDrops
  // {"spool", "full"} event (Spool::AppendDropReport). 0: never (the caller does it).
  std::chrono::milliseconds drop_report_interval{1000};
  // Parse every event before sending (declaring unparseable ones lost)
  // instead of a cheap wire-format check. Switched on by itself for the
  // rest of the uplink's life after the server refused a batch as invalid.
  bool validate_payloads = false;

  // Describes the endpoint in Hello and Heartbeat. May be empty.
  std::function<v1::AgentInfo()> agent_info;
  // Current isolation state for heartbeats. May be empty (false).
  std::function<bool()> isolated;
  // A command from the server. Return true once it is persisted (the agent
  // runs it at most once per command_id and reports a CommandResult event):
  // the uplink then answers CommandAck. false: no ack; the server sends it
  // again on a later stream. May be empty (commands are not acknowledged).
  std::function<bool(const v1::Command&)> on_command;
};

struct UplinkStats {
  bool connected = false;   // welcomed and the stream is up
  std::string server;       // the server of the current or last attempt
  uint64_t attempts = 0;    // connection attempts
  uint64_t streams = 0;     // attempts that got a Welcome
  uint64_t reconnects = 0;  // streams after the first one
  uint64_t failures = 0;    // attempts or streams that ended in an error
  uint64_t batches_sent = 0;
  uint64_t events_sent = 0;  // including resends
  uint64_t bytes_sent = 0;   // EventBatch bytes before gRPC compression
  uint64_t batches_acked = 0;
  uint64_t acked_sequence = 0;  // highest sequence the server acknowledged
  uint64_t lost_declared = 0;   // sequences declared lost to the server
  uint64_t heartbeats_sent = 0;
  uint64_t commands_received = 0;
  uint64_t commands_acked = 0;
  uint64_t drop_reports = 0;  // SensorDrops "spool" events appended
  uint64_t renewals = 0;          // certificates renewed
  uint64_t renewal_failures = 0;
  Status last_renewal_error;      // OK until a renewal failed
  int64_t certificate_not_after_ns = 0;  // of the certificate in use (0: insecure)
  Status last_error;          // OK until something failed
  int64_t last_error_at_ns = 0;
  std::chrono::milliseconds next_attempt_in{0};  // while waiting to reconnect
  bool validating_payloads = false;
};

class Uplink {
 public:
  // Checks the options (servers non-empty and "host:port", credentials
  // present unless insecure, insecure only with loopback servers).
  // `spool` is not owned and must outlive the uplink; the uplink is its
  // delivery cursor's only user.
  static Result<std::unique_ptr<Uplink>> Create(UplinkOptions options, Spool* spool);

  ~Uplink();  // Stop()
  Uplink(const Uplink&) = delete;
  Uplink& operator=(const Uplink&) = delete;

  // Starts the thread. kFailedPrecondition when already started.
  Status Start();
  // Ends the stream (batches in flight stay in the spool and are resent by
  // the next uplink) and joins the thread. Idempotent.
  void Stop();

  UplinkStats stats() const;

  struct Impl;

 private:
  explicit Uplink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::telemetry
