#!/usr/bin/env bash
# Parser sandbox benchmark: what opening containers and mail in confined
# worker processes costs, against the same scans in process, in one run.
#   1. mamori_parser_worker_bench: zips, mails and plain files scanned in
#      process and through the ParserPool, alternating rounds.
#   2. On-access: mamori-agent watching a tmpfs this script mounts, first open
#      of each of ZIPS zip files (every open waits for a scan), agent off,
#      agent with scan.parser_sandbox false, agent with it true; ROUNDS rounds
#      interleaved, the agent restarted for each (so nothing is cached).
# Needs root (fanotify). Writes bench/results/parser-sandbox.md.
#
#   sudo bench/parser-sandbox-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${WORK:-$ROOT/bench/work/parser-sandbox}
ZIPS=${ZIPS:-300}
ROUNDS=${ROUNDS:-3}
OUT=$ROOT/bench/results/parser-sandbox.md
AGENT=$ROOT/build/release/agent/mamori-agent
[ "$(id -u)" -eq 0 ] || { echo "parser-sandbox-bench: needs root (fanotify)"; exit 1; }
scripts/install-deps >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release --target mamori-agent mamori_parser_worker_bench >/dev/null

echo "== in-memory scans"
micro=$("$ROOT/build/release/scanner/mamori_parser_worker_bench" 200 8 5)
echo "$micro"

MNT=$WORK/mnt
mkdir -p "$MNT"
mountpoint -q "$MNT" && umount "$MNT"
mount -t tmpfs -o size=512m,mode=0755 tmpfs "$MNT"
AGENT_PID=""
stop_agent() {
  if [ -n "$AGENT_PID" ]; then
    kill "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
  fi
  AGENT_PID=""
}
cleanup() { stop_agent; umount -l "$MNT" 2>/dev/null || true; }
trap cleanup EXIT

echo "== making $ZIPS zip files on $MNT"
python3 - "$MNT/zips" "$ZIPS" <<'PY'
import os, random, sys, zipfile
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root, exist_ok=True)
words = b"invoice the payment of report quarterly and attached please find data 42 total EUR customer order".split()
rng = random.Random(7)
for i in range(n):
    with zipfile.ZipFile(os.path.join(root, "a%04d.zip" % i), "w", zipfile.ZIP_DEFLATED) as z:
        for j in range(8):
            size = 4096 + rng.randrange(60 * 1024)
            out = bytearray()
            while len(out) < size:
                out += rng.choice(words) + (b"\n" if rng.randrange(12) == 0 else b" ")
            z.writestr("doc/part%d.txt" % j, bytes(out))
PY

# First open+read of every zip; prints "mean_ms p50_ms p99_ms"
open_all() {
  python3 - "$MNT/zips" <<'PY'
import os, sys, time
root = sys.argv[1]
lat = []
for name in sorted(os.listdir(root)):
    t = time.perf_counter()
    with open(os.path.join(root, name), "rb") as f:
        f.read()
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print("%.3f %.3f %.3f" % (sum(lat) / len(lat), lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]))
PY
}

start_agent() {  # $1 = true|false (scan.parser_sandbox)
  local data=$WORK/data-$1
  rm -rf "$data" "$WORK/agent.sock"
  cat > "$WORK/agent.yaml" <<YAML
log_level: warning
data_dir: $data
control_socket: $WORK/agent.sock
signatures: [$ROOT/signatures/default]
onaccess:
  open_paths: [$MNT]
  scan_on_close_write: false
  action: report
scan:
  parser_sandbox: $1
behavior:
  enabled: false
YAML
  "$AGENT" --config "$WORK/agent.yaml" 2>> "$WORK/agent.log" &
  AGENT_PID=$!
  for _ in $(seq 200); do [ -S "$WORK/agent.sock" ] && break; sleep 0.1; done
  [ -S "$WORK/agent.sock" ] || { echo "agent did not start, see $WORK/agent.log"; exit 1; }
  sleep 1
}

declare -A mean p50 p99
for mode in off in-process sandboxed; do mean[$mode]=""; p50[$mode]=""; p99[$mode]=""; done
for round in $(seq "$ROUNDS"); do
  for mode in off in-process sandboxed; do
    case $mode in
      off) ;;
      in-process) start_agent false ;;
      sandboxed) start_agent true ;;
    esac
    read -r m a b < <(open_all)
    stop_agent
    echo "round $round $mode: mean $m ms, p50 $a ms, p99 $b ms"
    mean[$mode]+="$m "; p50[$mode]+="$a "; p99[$mode]+="$b "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
r() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
for mode in off in-process sandboxed; do
  eval "M_${mode//-/_}=$(echo "${mean[$mode]}" | median)"
  eval "A_${mode//-/_}=$(echo "${p50[$mode]}" | median)"
  eval "B_${mode//-/_}=$(echo "${p99[$mode]}" | median)"
done

{
  echo "# Parser sandbox benchmark"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -r), mamori $(git rev-parse --short HEAD 2>/dev/null || echo '?'),"
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end. Produced by \`bench/parser-sandbox-bench.sh\` (as root)."
  echo
  echo "## Scans in memory (\`mamori_parser_worker_bench 200 8 5\`, default signatures)"
  echo
  echo '```'
  echo "$micro"
  echo '```'
  echo
  echo "## On-access: first open of $ZIPS zip files (8 text members, ~49 KiB each)"
  echo
  echo "The agent watches a tmpfs (FAN_OPEN_PERM, action report, no close-write scans, no behavior monitor)"
  echo "and is restarted for every pass, so every open waits for a full scan. Medians of $ROUNDS interleaved rounds."
  echo
  echo "| agent | mean (ms) | p50 (ms) | p99 (ms) |"
  echo "|---|---:|---:|---:|"
  echo "| off | $M_off | $A_off | $B_off |"
  echo "| on, parsers in process (\`scan.parser_sandbox: false\`) | $M_in_process | $A_in_process | $B_in_process |"
  echo "| on, parsers sandboxed (default) | $M_sandboxed | $A_sandboxed | $B_sandboxed |"
  echo
  echo "Sandboxed / in process: mean $(r "$M_sandboxed" "$M_in_process")x, p50 $(r "$A_sandboxed" "$A_in_process")x, p99 $(r "$B_sandboxed" "$B_in_process")x."
} > "$OUT"
cat "$OUT"
