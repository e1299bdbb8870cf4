// The uplink thread: connect, Hello/Welcome, pipelined batches, acks,
// heartbeats, commands, reconnect with backoff. See uplink.h for the
// contract and docs/telemetry-uplink.md for the design.
#include "mamori/telemetry/uplink.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "backoff.h"
#include "channel.h"
#include "connect_call.h"
#include "mamori/common/log.h"
#include "mamori/telemetry/convert.h"
#include "mamori/v1/version.h"
#include "wire.h"

namespace mamori::telemetry {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kPoll{100};            // longest a wait lasts before the thread looks at Stop and the stream
constexpr size_t kDefaultBatchEvents = 1000;  // when neither the options nor Welcome say
constexpr size_t kDefaultBatchBytes = 4u << 20;

Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(s.error_code()), s.error_message());
}

// Refusals that a quick retry cannot fix.
bool IsRefusal(StatusCode c) {
  return c == StatusCode::kUnauthenticated || c == StatusCode::kPermissionDenied ||
         c == StatusCode::kFailedPrecondition;
}

milliseconds Until(Clock::time_point t, Clock::time_point now) {
  if (t <= now) return milliseconds(0);
  return std::chrono::duration_cast<milliseconds>(t - now) + milliseconds(1);
}

}  // namespace

Result<Compression> CompressionFromName(std::string_view name) {
  if (name == "auto" || name.empty()) return Compression::kAuto;
  if (name == "none") return Compression::kNone;
  if (name == "gzip") return Compression::kGzip;
  if (name == "deflate") return Compression::kDeflate;
  return InvalidArgumentError("compression must be auto, none, gzip or deflate, not '" + std::string(name) + "'");
}

struct Uplink::Impl {
  Impl(UplinkOptions o, Spool* s)
      : opt(std::move(o)),
        spool(s),
        credentials(opt.credentials),
        creds(MakeCredentials(credentials, opt.insecure)),
        backoff(opt.initial_backoff, opt.max_backoff, opt.backoff_jitter, std::random_device{}()),
        validate(opt.validate_payloads) {}

  // What one stream attempt ended with.
  struct StreamEnd {
    grpc::Status grpc_status;  // the call's final status
    Status local;              // set when the uplink ended the stream itself
    bool welcomed = false;
    Clock::duration lived{};  // since the Welcome
    bool unanswered = false;  // batches were in flight when it ended
    bool for_renewal = false;  // ended by the uplink to renew its certificate
  };

  void Run();
  StreamEnd RunStream(const std::string& address);
  void Housekeeping(Clock::time_point now);
  bool RenewalDue() const;
  void Renew(const std::string& address);
  void SetError(const Status& s);
  template <typename F>
  void UpdateStats(F&& f) {
    std::lock_guard<std::mutex> lock(stats_mu);
    f(stats);
  }

  const UplinkOptions opt;                                // constant after construction
  Spool* const spool;                                     // not owned; the cursor is used by the thread only
  // Uplink thread only (replaced by a renewal).
  AgentCredentials credentials;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  Clock::time_point next_renewal_try{};

  std::thread thread;
  std::atomic<bool> stop{false};
  std::mutex wake_mu;
  std::condition_variable wake_cv;  // Stop wakes the reconnect wait

  mutable std::mutex stats_mu;
  UplinkStats stats;  // guarded by stats_mu

  // Uplink thread only.
  Backoff backoff;
  size_t server_index = 0;
  bool validate;
  Clock::time_point last_drop_check{};
  Status last_logged;
};

void Uplink::Impl::SetError(const Status& s) {
  UpdateStats([&](UplinkStats& st) {
    st.last_error = s;
    st.last_error_at_ns = NowNs();
  });
}

void Uplink::Impl::Housekeeping(Clock::time_point now) {
  if (opt.drop_report_interval.count() <= 0 || now - last_drop_check < opt.drop_report_interval) return;
  last_drop_check = now;
  Result<uint64_t> seq = spool->AppendDropReport([](const DropCounts& c) {
    MAMORI_LOG(kWarning, "telemetry: spool full: dropped " << c.low << " low and " << c.normal
                                                           << " normal priority events; reporting it");
    return EncodeSpoolPayload(SpoolDropReport(c, NowNs()));
  });
  if (!seq.ok()) {
    SetError(seq.status().WithContext("spool drop report"));
  } else if (*seq != Spool::kDropped) {
    UpdateStats([](UplinkStats& st) { ++st.drop_reports; });
  }
}

bool Uplink::Impl::RenewalDue() const {
  return !opt.insecure && !opt.renew_key_dir.empty() && Clock::now() >= next_renewal_try &&
         NowNs() >= RenewalDueAtNs(credentials, opt.renew_after_fraction);
}

void Uplink::Impl::Renew(const std::string& address) {
  RenewOptions ro;
  ro.server = address;
  ro.key_dir = opt.renew_key_dir;
  ro.current = credentials;
  ro.timeout = opt.welcome_timeout;
  Result<AgentCredentials> renewed = RenewCredentials(ro);
  // Also after a success: a certificate whose validity is shorter than the
  // renewal window would otherwise be renewed again at every connect.
  next_renewal_try = Clock::now() + opt.renew_retry;
  if (renewed.ok()) {
    credentials = std::move(*renewed);
    creds = MakeCredentials(credentials, false);
    UpdateStats([&](UplinkStats& st) {
      ++st.renewals;
      st.certificate_not_after_ns = credentials.not_after_ns;
    });
    return;
  }
  const int64_t hours_left = (credentials.not_after_ns - NowNs()) / 3'600'000'000'000;
  MAMORI_LOG(kWarning, "telemetry: renewing the agent certificate failed (" << renewed.status().ToString()
                                                                             << "); it expires in " << hours_left
                                                                             << " hours; retrying in "
                                                                             << opt.renew_retry.count() / 1000 << " s");
  UpdateStats([&](UplinkStats& st) {
    ++st.renewal_failures;
    st.last_renewal_error = renewed.status();
  });
}

void Uplink::Impl::Run() {
  UpdateStats([&](UplinkStats& st) { st.certificate_not_after_ns = opt.insecure ? 0 : credentials.not_after_ns; });
  while (!stop.load()) {
    const std::string& address = opt.servers[server_index % opt.servers.size()];
    if (RenewalDue()) Renew(address);
    StreamEnd end = RunStream(address);
    UpdateStats([](UplinkStats& st) { st.connected = false; });
    if (stop.load()) break;
    if (end.for_renewal) continue;  // renewed at the top of the loop, then straight back

    Status err = !end.local.ok() ? end.local : FromGrpc(end.grpc_status);
    if (err.ok()) err = UnavailableError("the server ended the stream");
    SetError(err);
    UpdateStats([](UplinkStats& st) { ++st.failures; });

    if (end.welcomed && end.unanswered && !validate &&
        (err.code() == StatusCode::kInvalidArgument || err.code() == StatusCode::kInternal)) {
      validate = true;
      UpdateStats([](UplinkStats& st) { st.validating_payloads = true; });
      MAMORI_LOG(kWarning, "telemetry: the server refused a batch ("
                               << err.ToString() << "); parsing every event before sending from now on");
    }
    if (end.welcomed && end.lived >= opt.healthy_after) backoff.Reset();
    milliseconds delay = backoff.Next();
    if (IsRefusal(err.code())) delay = std::max(delay, opt.refused_backoff);
    if (!end.welcomed) ++server_index;  // a server that works is retried first; one that fails is rotated away

    const bool repeated = err == last_logged;
    last_logged = err;
    if (repeated) {
      MAMORI_LOG(kDebug,
                 "telemetry: " << address << ": " << err.ToString() << "; retrying in " << delay.count() << " ms");
    } else {
      MAMORI_LOG(kWarning, "telemetry: stream to " << address << " ended: " << err.ToString() << "; retrying in "
                                                   << delay.count() << " ms");
    }
    UpdateStats([&](UplinkStats& st) { st.next_attempt_in = delay; });

    const Clock::time_point until = Clock::now() + delay;
    std::unique_lock<std::mutex> lock(wake_mu);
    while (!stop.load()) {
      const Clock::time_point now = Clock::now();
      if (now >= until) break;
      lock.unlock();
      Housekeeping(now);  // drop reports go on while offline
      lock.lock();
      wake_cv.wait_for(lock, std::min<Clock::duration>(until - now, milliseconds(1000)), [&] { return stop.load(); });
    }
    UpdateStats([](UplinkStats& st) { st.next_attempt_in = milliseconds(0); });
  }
}

Uplink::Impl::StreamEnd Uplink::Impl::RunStream(const std::string& address) {
  StreamEnd end;
  UpdateStats([&](UplinkStats& st) {
    ++st.attempts;
    st.server = address;
  });
  auto context = std::make_unique<grpc::ClientContext>();
  if (opt.insecure) context->AddMetadata("mamori-agent-id", credentials.agent_id);
  Compression compression = opt.compression;
  if (compression == Compression::kAuto)
    compression = IsLoopbackAddress(address) ? Compression::kNone : Compression::kGzip;
  switch (compression) {
    case Compression::kAuto:
    case Compression::kNone:
      break;
    case Compression::kGzip:
      context->set_compression_algorithm(GRPC_COMPRESS_GZIP);
      break;
    case Compression::kDeflate:
      context->set_compression_algorithm(GRPC_COMPRESS_DEFLATE);
      break;
  }
  ConnectCall call(MakeChannel(address, creds), std::move(context));
  call.Start();
  auto finish = [&](bool cancel, Status local) {
    end.local = std::move(local);
    end.grpc_status = call.Finish(cancel);
    return end;
  };

  // Hello: where the spool stands.
  {
    const SpoolStats ss = spool->GetStats();
    const uint64_t last = ss.next_sequence > 0 ? ss.next_sequence - 1 : 0;
    v1::AgentMessage m;
    v1::Hello* h = m.mutable_hello();
    h->set_protocol_version(v1::kProtocolVersion);
    if (opt.agent_info) *h->mutable_agent() = opt.agent_info();
    h->set_spool_first_sequence(last > ss.acked_sequence ? ss.acked_sequence + 1 : 0);
    h->set_spool_last_sequence(last);
    call.Write(wire::SerializeMessage(m));
  }

  // Welcome.
  ConnectCall::Arrivals in;
  const Clock::time_point welcome_deadline = Clock::now() + opt.welcome_timeout;
  for (;;) {
    if (stop.load()) return finish(true, Status(StatusCode::kCancelled, "stopping"));
    call.Take(&in);
    if (!in.messages.empty()) break;
    if (in.reads_ended)
      return finish(false, in.malformed ? InternalError("unparseable message from the server") : Status());
    if (Clock::now() >= welcome_deadline) {
      return finish(true,
                    DeadlineExceededError("no Welcome within " + std::to_string(opt.welcome_timeout.count()) + " ms"));
    }
    call.Wait(kPoll);
  }
  if (!in.messages.front().has_welcome())
    return finish(true, InternalError("the server's first message is not Welcome"));
  const v1::Welcome welcome = in.messages.front().welcome();
  in.messages.pop_front();

  const SpoolStats ss = spool->GetStats();
  const uint64_t spool_last = ss.next_sequence > 0 ? ss.next_sequence - 1 : 0;
  if (welcome.acked_sequence() > spool_last) {
    // The server holds sequences this spool never assigned: new events
    // would reuse stored sequences and be discarded as duplicates.
    return finish(true, FailedPreconditionError(
                            "the server has stored sequences up to " + std::to_string(welcome.acked_sequence()) +
                            " of this agent but the spool ends at " + std::to_string(spool_last) +
                            " (spool reset under an enrolled identity?): enroll again to start a new agent id"));
  }
  const auto limit = [](size_t mine, uint32_t server, size_t fallback) -> size_t {
    const size_t theirs = server > 0 ? server : (mine > 0 ? mine : fallback);
    return mine > 0 ? std::min(mine, theirs) : theirs;
  };
  const size_t hard_bytes = welcome.max_batch_bytes() > 0 ? welcome.max_batch_bytes()
                                                          : std::max<size_t>(opt.max_batch_bytes, kDefaultBatchBytes);
  const size_t soft_bytes = limit(opt.max_batch_bytes, welcome.max_batch_bytes(), kDefaultBatchBytes);
  const size_t max_events = limit(opt.max_batch_events, welcome.max_batch_events(), kDefaultBatchEvents);
  wire::BatchBuilder builder(max_events, soft_bytes, hard_bytes, validate);
  if (welcome.acked_sequence() > ss.acked_sequence) {
    Status s = spool->Ack(welcome.acked_sequence());
    if (!s.ok()) return finish(true, s.WithContext("spool ack"));
  } else if (welcome.acked_sequence() < ss.acked_sequence) {
    // The server lost what it once acknowledged (restored from a backup, or
    // a store without durable commits lost power): those events are gone
    // from the spool. Declare them, so the server's ack can move on.
    MAMORI_LOG(kError, "telemetry: " << address << " acknowledges only up to " << welcome.acked_sequence()
                                     << " but acknowledged " << ss.acked_sequence
                                     << " before; declaring the difference lost");
    builder.AddLost(welcome.acked_sequence() + 1, ss.acked_sequence,
                    "acknowledged earlier by the server, missing there now; no longer in the agent's spool");
  }
  spool->Rewind();  // everything unacknowledged goes again

  end.welcomed = true;
  const Clock::time_point welcomed_at = Clock::now();
  const milliseconds heartbeat_every = welcome.heartbeat_interval_s() > 0
                                           ? milliseconds(uint64_t{welcome.heartbeat_interval_s()} * 1000)
                                           : std::chrono::duration_cast<milliseconds>(opt.default_heartbeat_interval);
  UpdateStats([&](UplinkStats& st) {
    st.connected = true;
    if (st.streams++ > 0) ++st.reconnects;
    st.acked_sequence = std::max<uint64_t>(st.acked_sequence, welcome.acked_sequence());
  });
  MAMORI_LOG(kInfo, "telemetry: connected to " << address << " (server " << welcome.protocol_version() << ", acked "
                                               << welcome.acked_sequence() << ", spool up to " << spool_last << ")");
  last_logged = Status();

  std::deque<uint64_t> in_flight;  // last sequence of each unanswered batch, oldest first
  uint64_t acked = std::max(welcome.acked_sequence(), ss.acked_sequence);
  Clock::time_point next_heartbeat = welcomed_at + heartbeat_every;
  Clock::time_point first_added = welcomed_at;  // when the oldest record in `builder` was read

  auto send_batch = [&] {
    const size_t events = builder.events();
    const size_t bytes = builder.bytes();
    const uint64_t lost = builder.lost_sequences();
    in_flight.push_back(builder.last_sequence());
    call.Write(builder.TakeMessage());  // false: the call ended; the loop sees it, the spool keeps the events
    UpdateStats([&](UplinkStats& st) {
      ++st.batches_sent;
      st.events_sent += events;
      st.bytes_sent += bytes;
      st.lost_declared += lost;
    });
  };
  auto elapsed = [&] { return Clock::now() - welcomed_at; };

  for (;;) {
    if (stop.load()) {
      end.unanswered = !in_flight.empty();
      end.lived = elapsed();
      return finish(true, Status(StatusCode::kCancelled, "stopping"));
    }
    // What the server said.
    call.Take(&in);
    for (v1::ServerMessage& m : in.messages) {
      switch (m.body_case()) {
        case v1::ServerMessage::kBatchAck: {
          if (in_flight.empty()) {
            end.lived = elapsed();
            return finish(true, InternalError("BatchAck without a batch in flight"));
          }
          in_flight.pop_front();
          const uint64_t a = m.batch_ack().acked_sequence();
          if (a > acked) {
            Status s = spool->Ack(a);
            if (!s.ok()) {
              end.lived = elapsed();
              end.unanswered = !in_flight.empty();
              return finish(true, s.WithContext("spool ack " + std::to_string(a)));
            }
            acked = a;
          }
          UpdateStats([&](UplinkStats& st) {
            ++st.batches_acked;
            st.acked_sequence = std::max(st.acked_sequence, a);
          });
          break;
        }
        case v1::ServerMessage::kCommand: {
          UpdateStats([](UplinkStats& st) { ++st.commands_received; });
          if (opt.on_command && opt.on_command(m.command())) {
            v1::AgentMessage ack;
            ack.mutable_command_ack()->set_command_id(m.command().command_id());
            call.Write(wire::SerializeMessage(ack));
            UpdateStats([](UplinkStats& st) { ++st.commands_acked; });
          }
          break;
        }
        case v1::ServerMessage::kWelcome:
          end.lived = elapsed();
          return finish(true, InternalError("a second Welcome on one stream"));
        case v1::ServerMessage::BODY_NOT_SET:
          break;  // a message kind from a newer server: ignored
      }
    }
    in.messages.clear();
    if (in.reads_ended) {
      end.unanswered = !in_flight.empty();
      end.lived = elapsed();
      return finish(false, in.malformed ? InternalError("unparseable message from the server") : Status());
    }

    Clock::time_point now = Clock::now();
    if (RenewalDue()) {
      // Unanswered batches are resent on the next stream (the server dedupes).
      MAMORI_LOG(kInfo, "telemetry: the agent certificate is due for renewal; reconnecting to renew it");
      end.for_renewal = true;
      end.unanswered = !in_flight.empty();
      end.lived = elapsed();
      return finish(true, Status(StatusCode::kCancelled, "certificate renewal"));
    }
    if (now >= next_heartbeat) {
      v1::AgentMessage m;
      v1::Heartbeat* hb = m.mutable_heartbeat();
      hb->set_timestamp_ns(NowNs());
      if (opt.agent_info) *hb->mutable_agent() = opt.agent_info();
      hb->set_isolated(opt.isolated ? opt.isolated() : false);
      const SpoolStats cur = spool->GetStats();
      const uint64_t last = cur.next_sequence > 0 ? cur.next_sequence - 1 : 0;
      hb->set_spool_events(last > cur.acked_sequence ? last - cur.acked_sequence : 0);
      call.Write(wire::SerializeMessage(m));
      UpdateStats([](UplinkStats& st) { ++st.heartbeats_sent; });
      next_heartbeat = now + heartbeat_every;
    }
    Housekeeping(now);

    if (in_flight.size() >= opt.max_in_flight) {
      call.Wait(std::min(kPoll, Until(next_heartbeat, now)));  // an ack makes room
      continue;
    }
    if (!builder.full()) {
      milliseconds wait;
      if (builder.empty()) {
        wait = std::min(kPoll, Until(next_heartbeat, now));
      } else if (in_flight.empty()) {
        wait = milliseconds(0);  // nothing on the wire: whatever is there goes now
      } else {
        wait = std::min(kPoll, Until(first_added + opt.batch_delay, now));
      }
      Result<SpoolBatch> got = spool->ReadBatch(builder.remaining_events(), builder.remaining_bytes(), wait);
      if (!got.ok()) {
        SetError(got.status().WithContext("spool read"));
        MAMORI_LOG(kWarning, "telemetry: spool read: " << got.status().ToString());
        call.Wait(kPoll);
        continue;
      }
      now = Clock::now();
      if (builder.empty() && !got->empty()) first_added = now;
      for (const LostRange& r : got->lost()) {
        builder.AddLost(r.first, r.last, ValidUtf8(r.reason.message()));
      }
      for (size_t i = 0; i < got->size(); ++i) {
        const SpoolBatch::Record rec = (*got)[i];
        if (builder.AddRecord(rec.sequence, rec.payload) != wire::BatchBuilder::AddResult::kFull) continue;
        send_batch();  // in_flight was below the window before this read
        first_added = now;
        (void)builder.AddRecord(rec.sequence, rec.payload);  // fits an empty batch, or is declared lost
      }
    }
    if (!builder.empty() && in_flight.size() < opt.max_in_flight &&
        (builder.full() || in_flight.empty() || now - first_added >= opt.batch_delay)) {
      send_batch();
    }
  }
}

Uplink::Uplink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Uplink::~Uplink() { Stop(); }

Result<std::unique_ptr<Uplink>> Uplink::Create(UplinkOptions options, Spool* spool) {
  if (spool == nullptr) return InvalidArgumentError("uplink: no spool");
  if (options.servers.empty()) return InvalidArgumentError("uplink: no server address");
  for (const auto& s : options.servers) MAMORI_RETURN_IF_ERROR(ParseServerAddress(s, nullptr, nullptr));
  if (options.insecure) {
    MAMORI_RETURN_IF_ERROR(CheckInsecureAllowed(options.servers, "telemetry uplink"));
    if (options.credentials.agent_id.empty()) {
      return InvalidArgumentError("uplink: insecure mode needs the agent id (enroll first)");
    }
  } else if (options.credentials.key_pem.empty() || options.credentials.certificate_pem.empty() ||
             options.credentials.ca_certificate_pem.empty()) {
    return FailedPreconditionError("uplink: the agent is not enrolled (key, certificate and CA certificate needed)");
  }
  if (!options.renew_key_dir.empty() &&
      (options.insecure || options.renew_after_fraction < 0 || options.renew_after_fraction > 1 ||
       options.renew_retry.count() <= 0)) {
    return InvalidArgumentError("uplink: renewal needs TLS, 0 <= renew_after_fraction <= 1 and renew_retry > 0");
  }
  if (options.max_in_flight == 0 || (options.max_batch_bytes != 0 && options.max_batch_bytes < 1024)) {
    return InvalidArgumentError("uplink: max_in_flight must be >= 1, max_batch_bytes 0 or >= 1024");
  }
  if (options.initial_backoff.count() <= 0 || options.max_backoff < options.initial_backoff ||
      options.backoff_jitter < 0 || options.backoff_jitter >= 1) {
    return InvalidArgumentError("uplink: backoff needs 0 < initial <= max and 0 <= jitter < 1");
  }
  return std::unique_ptr<Uplink>(new Uplink(std::make_unique<Impl>(std::move(options), spool)));
}

Status Uplink::Start() {
  if (impl_->thread.joinable()) return FailedPreconditionError("uplink: already started");
  impl_->stop.store(false);
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
  return Status::Ok();
}

void Uplink::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->wake_mu);
    impl_->stop.store(true);
  }
  impl_->wake_cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

UplinkStats Uplink::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mu);
  UplinkStats s = impl_->stats;
  s.validating_payloads = s.validating_payloads || impl_->opt.validate_payloads;
  return s;
}

}  // namespace mamori::telemetry
