#!/usr/bin/env bash
# Telemetry benchmark: one agent-side process (spool + uplink, the driver
# telemetry/uplink/bench/uplink_driver.cc) streaming to mamori-server on
# loopback over mTLS, as an enrolled agent.
#   1. throughput: EVENTS realistic exec events (~300 bytes) appended as fast as
#      the producer can; events/s = EVENTS / time until the server acknowledged
#      the last one (durably stored). Agent CPU (user+sys) and peak RSS.
#   2. latency: RATE events/s for LAT_SECONDS; append -> acknowledged p50/p99
#      (agent side), and received_at - timestamp p50/p99 (server side, from the store).
# Server variants: SQLite with the shipped defaults (durable commits,
# stream.max_batch_events 5000), smaller and larger batches (the server decides
# them in Welcome), durable_commits off, SQLite on tmpfs (no disk: the server's CPU
# ceiling), PostgreSQL (scripts/start-postgres; PG=off skips it); gzip vs
# none; and the batch-framing micro-benchmark. Best of REPS.
# Writes bench/results/telemetry.md.
#
#   bench/telemetry-bench.sh
#   EVENTS=300000 RATE=20000 LAT_SECONDS=10 REPS=2 BUILD=build/release PG=auto [NO_BUILD=1] bench/telemetry-bench.sh
#   ONLY=sqlite,pg bench/telemetry-bench.sh   # just these rows (keys as in R[...] below)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build/release}
EVENTS=${EVENTS:-300000}
RATE=${RATE:-20000}
LAT_SECONDS=${LAT_SECONDS:-10}
REPS=${REPS:-2}
PG=${PG:-auto}
WORK=${WORK:-$ROOT/bench/work/telemetry}
OUT=${OUT:-$ROOT/bench/results/telemetry.md}

if [ -z "${NO_BUILD:-}" ]; then
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  nice cmake --build "$BUILD" -j2 --target mamori-server mamori_uplink_driver >/dev/null
fi
SERVER=${SERVER:-$BUILD/server/main/mamori-server}
DRIVER=$BUILD/telemetry/uplink/mamori_uplink_driver

rm -rf "$WORK"
mkdir -p "$WORK"
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
  rm -rf "$WORK" "${SHM:-}"
}
trap cleanup EXIT

PGCONN=
if [ "$PG" != off ]; then
  if PGCONN=$("$ROOT/scripts/start-postgres" 2>/dev/null); then :; else
    echo "telemetry-bench: PostgreSQL unavailable; skipping it" >&2
    PGCONN=
  fi
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# start_server DIR STORE_YAML: starts mamori-server on a free port; sets $addr.
start_server() {
  local dir=$1 store=$2 port
  port=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/server.yaml" <<EOF
listen: 127.0.0.1:$port
data_dir: $dir
log_level: info
metrics:
  enabled: false
$store
EOF
  "$SERVER" --config "$dir/server.yaml" >"$dir/server.log" 2>&1 &
  server_pid=$!
  addr=127.0.0.1:$port
  for _ in $(seq 300); do
    grep -qs "listening on" "$dir/server.log" && return 0
    sleep 0.05
  done
  echo "telemetry-bench: the server did not start:" >&2
  cat "$dir/server.log" >&2
  exit 1
}

stop_server() {
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=
}

# run DIR STORE_YAML DRIVER_ARGS...: one server, one enrolled agent, one
# driver run; prints the driver's JSON plus server-side latency fields.
run() {
  local dir=$1 store=$2
  shift 2
  trap '[ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null' EXIT  # this subshell's server
  start_server "$dir" "$store"
  "$SERVER" --config "$dir/server.yaml" ca export >"$dir/ca.pem"
  local token out
  token=$("$SERVER" --config "$dir/server.yaml" token create 2>/dev/null)
  out=$("$DRIVER" --spool "$dir/spool" --key-dir "$dir/keys" --server "$addr" --enroll-token "$token" \
    --ca-file "$dir/ca.pem" "$@")
  # The server's CPU over the whole run (enrollment is a few ms of it).
  local ticks server_cpu
  ticks=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
  server_cpu=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')
  stop_server
  local p50=0 p99=0
  if [ -f "$dir/mamori.db" ]; then
    read -r p50 p99 < <(sqlite3 "$dir/mamori.db" "
      WITH d AS (SELECT received_at - ts AS v FROM events), n AS (SELECT count(*) AS c FROM d)
      SELECT (SELECT v FROM d ORDER BY v LIMIT 1 OFFSET (SELECT c * 50 / 100 FROM n)) / 1e6,
             (SELECT v FROM d ORDER BY v LIMIT 1 OFFSET (SELECT c * 99 / 100 FROM n)) / 1e6;" | tr '|' ' ')
  elif [ -n "$PGCONN" ]; then
    local schema
    schema=$(sed -n 's/^ *schema: //p' "$dir/server.yaml")
    read -r p50 p99 < <(psql "$PGCONN" -tA -F' ' -c "
      SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY received_at - ts) / 1e6,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY received_at - ts) / 1e6 FROM $schema.events;")
    psql "$PGCONN" -q -c "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
  fi
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["server_p50_ms"]=float(sys.argv[2]); d["server_p99_ms"]=float(sys.argv[3]); d["server_cpu_s"]=float(sys.argv[4]); print(json.dumps(d))' \
    "$out" "$p50" "$p99" "$server_cpu"
  rm -rf "$dir"
}

batches() { printf 'stream:\n  max_batch_events: %s\n  max_batch_bytes: 16777216\n  max_message_size: 33554432\n' "$1"; }
DEFAULTS=""
B1K=$(batches 1000)
B5K=$(batches 5000)
B10K=$(batches 10000)
FAST=$'store:\n  sqlite:\n    durable_commits: false\n'"$B5K"
pg_store() { printf 'store:\n  postgres:\n    conninfo: "%s"\n    schema: mamori_bench_%s\n%s' "$PGCONN" "$$" "${1:-}"; }
SHM=/dev/shm/mamori-telemetry-bench-$$

# best NAME BASE_DIR SERVER_YAML DRIVER_ARGS...: best of REPS by events/s; prints the JSON.
best() {
  local name=$1 base=$2 store=$3 best_json="" best_eps=0 j eps all=
  shift 3
  for r in $(seq "$REPS"); do
    j=$(run "$base/$name-$r" "$store" "$@")
    eps=$(json "$j" events_per_s)
    echo "  $name run $r: $eps events/s, done=$(json "$j" done)" >&2
    all="${all:+$all, }$(printf '%.0fk' "$(awk -v e="$eps" 'BEGIN { print e / 1000 }')")"
    if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$eps" "$best_eps"; then
      best_eps=$eps
      best_json=$j
    fi
  done
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["all_runs"]=sys.argv[2]; print(json.dumps(d))' "$best_json" "$all"
}

want() { [ -z "${ONLY:-}" ] || [[ ",$ONLY," == *",$1,"* ]]; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A R
echo "throughput: $EVENTS events, best of $REPS" >&2
want sqlite && R[sqlite]=$(best sqlite "$WORK" "$DEFAULTS" --events "$EVENTS")
want sqlite1k && R[sqlite1k]=$(best sqlite1k "$WORK" "$B1K" --events "$EVENTS")
want sqlite10k && R[sqlite10k]=$(best sqlite10k "$WORK" "$B10K" --events "$EVENTS")
want sqlite_fast && R[sqlite_fast]=$(best sqlite_fast "$WORK" "$FAST" --events "$EVENTS")
mkdir -p "$SHM"
want sqlite_shm && R[sqlite_shm]=$(best sqlite_shm "$SHM" "$B5K" --events "$EVENTS")
rm -rf "$SHM"
want sqlite_gzip && R[sqlite_gzip]=$(best sqlite_gzip "$WORK" "$B5K" --events "$EVENTS" --compression gzip)
if [ -n "$PGCONN" ]; then
  want pg && R[pg]=$(best pg "$WORK" "$(pg_store)" --events "$EVENTS")
fi
echo "latency: $RATE events/s for $LAT_SECONDS s" >&2
lat_events=$((RATE * LAT_SECONDS))
want sqlite_lat && R[sqlite_lat]=$(best sqlite_lat "$WORK" "$DEFAULTS" --events "$lat_events" --rate "$RATE")
[ -n "$PGCONN" ] && want pg_lat && R[pg_lat]=$(best pg_lat "$WORK" "$(pg_store)" --events "$lat_events" --rate "$RATE")
encode=$("$DRIVER" --encode-bench --events 200000)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

row() {  # row LABEL KEY
  local j=${R[$2]:-}
  [ -z "$j" ] && return 0
  python3 - "$1" "$j" <<'EOF'
import json, sys
label, d = sys.argv[1], json.loads(sys.argv[2])
cpu = d["cpu_user_s"] + d["cpu_sys_s"]
print(f"| {label} | {d['appended']:,} | **{d['events_per_s']:,.0f}** ({d['all_runs']}) "
      f"| {cpu:.2f} s = {1e6 * cpu / d['appended']:.1f} µs/event | {d['max_rss_kb'] / 1024:.0f} MB "
      f"| {d['server_cpu_s']:.2f} s = {1e6 * d['server_cpu_s'] / d['appended']:.1f} µs/event "
      f"| {d['latency_p50_ms']:.0f} / {d['latency_p99_ms']:.0f} ms "
      f"| {d['server_p50_ms']:.0f} / {d['server_p99_ms']:.0f} ms | {d['batches']:,} |")
EOF
}

{
  echo "# Telemetry uplink benchmark"
  echo
  echo "\`bench/telemetry-bench.sh\` — one agent-side process (\`mamori_uplink_driver\`: spool +"
  echo "uplink, ~300-byte exec events made by the driver) streaming to \`mamori-server\` over mTLS on"
  echo "127.0.0.1, as an enrolled agent. Best of $REPS runs per row."
  echo
  echo "Machine: $(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
  echo "$(free -g | awk '/Mem:/ {print $2}') GB RAM, $(uname -r); shared with other engineers' builds:"
  echo "load average $load_before before, $load_after after. Server and agent share the 2 vCPUs."
  echo "Date: $(date -u +%Y-%m-%dT%H:%MZ). Build: $(basename "$BUILD") (RelWithDebInfo)."
  echo
  echo "| run | events | events/s, append → all acked: best (each run) | agent CPU (user+sys) | agent peak RSS | server CPU | append → acked p50 / p99 | server received_at − ts p50 / p99 | batches |"
  echo "|---|---|---|---|---|---|---|---|---|"
  row "SQLite, server defaults (durable commits, batches of 5,000)" sqlite
  row "SQLite, durable, stream.max_batch_events 1,000 (the old default)" sqlite1k
  row "SQLite, durable, stream.max_batch_events 10,000" sqlite10k
  row "SQLite, durable_commits: false, batches of 5,000" sqlite_fast
  row "SQLite on tmpfs (no disk), batches of 5,000" sqlite_shm
  row "SQLite, durable, batches of 5,000, gzip" sqlite_gzip
  row "PostgreSQL 15 (same host), server defaults" pg
  row "latency: SQLite, server defaults, paced at $RATE/s" sqlite_lat
  row "latency: PostgreSQL, server defaults, paced at $RATE/s" pg_lat
  echo
  echo "Batch framing and gzip (one core, no network): $encode"
  echo
  echo "How to read it:"
  echo "- events/s: EVENTS appended as fast as the producer can, divided by the time until the server"
  echo "  acknowledged the last one (stored; durably unless durable_commits is off). The server reads"
  echo "  ahead on a stream (up to 8 messages / 2 x max_batch_bytes) and stores the batches it finds"
  echo "  waiting in one transaction (one fsync), while gRPC receives and parses the next ones; batch size"
  echo "  is the server's choice (stream.max_batch_events, sent in Welcome)."
  echo "- agent CPU / RSS: the whole driver process: event generation and serialization, spool appends"
  echo "  and group commits, the uplink, TLS. RSS includes the driver's latency bookkeeping (16 bytes per"
  echo "  event). In the paced rows the CPU per event also carries the driver's 1 kHz acknowledgement"
  echo "  poller (instrumentation) and the spool's idle group commits."
  echo "- append → acked: from the append to the spool until the spool's acknowledged sequence passed it"
  echo "  (sampled every ms). At max rate it is queueing (the producer outruns the server). Paced, it is"
  echo "  the pipeline: spool group commit (50 ms period), batching (none when nothing is in flight,"
  echo "  else up to 50 ms), the server's transaction and fsync, the ack."
  echo "- server received_at − ts: the store's receive stamp minus the event's timestamp (append time)."
} >"$OUT"
cat "$OUT"
