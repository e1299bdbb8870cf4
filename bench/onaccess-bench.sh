#!/usr/bin/env bash
# On-access benchmark: the cost of mamori-agent's fanotify protection, agent
# off versus on, in one run. Needs root. Everything happens on a tmpfs this
# script mounts for itself; the agent watches that mount only.
#
#   sudo bench/onaccess-bench.sh        # writes bench/results/onaccess.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${WORK:-$ROOT/bench/work/onaccess}
FILES=${FILES:-100000}
EXECS=${EXECS:-5000}
OUT=$ROOT/bench/results/onaccess.md
AGENT=$ROOT/build/release/agent/mamori-agent
[ "$(id -u)" -eq 0 ] || { echo "onaccess-bench: needs root (fanotify)"; exit 1; }
scripts/install-deps >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release --target mamori-agent mamori >/dev/null

MNT=$WORK/mnt
mkdir -p "$MNT"
mountpoint -q "$MNT" && umount "$MNT"
mount -t tmpfs -o size=1g,mode=0755 tmpfs "$MNT"
AGENT_PID=""
cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null || true
  umount -l "$MNT" 2>/dev/null || true
}
trap cleanup EXIT

echo "making $FILES small files"
python3 - "$MNT/files" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d.txt" % i), "wb") as f:
        f.write((b"clean text line %d\n" % i) * 48)
PY
mkdir -p "$MNT/bin" && cp /bin/true "$MNT/bin/true"

# open+read every file; prints seconds
read_all() {
  python3 - "$MNT/files" <<'PY'
import os, sys, time
root = sys.argv[1]
paths = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
t = time.perf_counter()
for p in paths:
    with open(p, "rb") as f:
        f.read()
print("%.3f" % (time.perf_counter() - t))
PY
}
# EXECS short processes, one after another; prints seconds
exec_storm() {
  python3 - "$MNT/bin/true" "$EXECS" <<'PY'
import os, sys, time
exe, n = sys.argv[1], int(sys.argv[2])
t = time.perf_counter()
for _ in range(n):
    pid = os.posix_spawn(exe, [exe], {})
    os.waitpid(pid, 0)
print("%.3f" % (time.perf_counter() - t))
PY
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mb() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }

echo "agent off"
off_first=$(read_all); off_second=$(read_all); off_exec=$(exec_storm)

echo "agent on"
DATA=$WORK/data; rm -rf "$DATA"
cat > "$WORK/agent.yaml" <<YAML
log_level: warning
data_dir: $DATA
control_socket: $WORK/agent.sock
signatures: [$ROOT/signatures/default]
onaccess:
  exec_paths: [$MNT]
  open_paths: [$MNT]
  action: quarantine
YAML
"$AGENT" --config "$WORK/agent.yaml" 2> "$WORK/agent.log" &
AGENT_PID=$!
for _ in $(seq 100); do [ -S "$WORK/agent.sock" ] && break; sleep 0.1; done
sleep 2
idle_rss=$(rss_mb "$AGENT_PID"); t0=$(cpu_ticks "$AGENT_PID"); sleep 5; t1=$(cpu_ticks "$AGENT_PID")
hz=$(getconf CLK_TCK)
idle_cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN{printf "%.2f", 100*(b-a)/hz/5}')
on_first=$(read_all); on_second=$(read_all)
c0=$(cpu_ticks "$AGENT_PID"); on_exec=$(exec_storm); c1=$(cpu_ticks "$AGENT_PID")
storm_cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v s="$on_exec" 'BEGIN{printf "%.1f", 100*(b-a)/hz/s}')
storm_rss=$(rss_mb "$AGENT_PID")
status=$("$ROOT/build/release/cli/mamori" status --socket "$WORK/agent.sock" | grep on-access || true)

r() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
{
  echo "# On-access benchmark"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -r), mamori $(git rev-parse --short HEAD 2>/dev/null || echo '?')."
  echo "Produced by \`bench/onaccess-bench.sh\` (as root). A tmpfs mounted by the script holds $FILES files of ~1 KB"
  echo "and a copy of /bin/true; the agent (default signatures, action quarantine) watches that mount only, with"
  echo "FAN_OPEN_PERM, FAN_OPEN_EXEC_PERM and FAN_CLOSE_WRITE."
  echo
  echo "| workload | agent off (s) | agent on (s) | on/off | target |"
  echo "|---|---:|---:|---:|---|"
  echo "| open+read $FILES files, first pass (every file scanned) | $off_first | $on_first | $(r "$on_first" "$off_first") | — |"
  echo "| open+read $FILES files, second pass (cached: clean marks) | $off_second | $on_second | $(r "$on_second" "$off_second") | ≤ 1.10 |"
  echo "| $EXECS execs of a short process | $off_exec | $on_exec | $(r "$on_exec" "$off_exec") | ≤ 1.5 |"
  echo
  echo "Agent: RSS $idle_rss MB idle, $storm_rss MB after the runs; CPU $idle_cpu% idle (5 s), $storm_cpu% of one core during the exec storm."
  echo
  echo "\`mamori status\` after the runs: $status"
} > "$OUT"
cat "$OUT"
