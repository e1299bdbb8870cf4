#!/usr/bin/env bash
# Bundle benchmark: build and load a hash-only bundle with 1,000,000 SHA-256
# entries, and profile the benchmark YARA rules (per-rule cost, slowest first).
#
#   bench/bundle-bench.sh        # writes bench/results/bundles.md
# Needs bench/scan-bench.sh's work folder for the 1M list (made here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${WORK:-$ROOT/bench/work}
RULES_DIR=${RULES_DIR:-$ROOT/../shared/bench/rules}
OUT=$ROOT/bench/results/bundles.md
SIG=$ROOT/build/release/signatures/mamori-sig
MAMORI=$ROOT/build/release/cli/mamori
mkdir -p "$WORK/bundle"
scripts/install-deps >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release --target mamori mamori-sig >/dev/null

B=$WORK/bundle
rm -rf "$B/src" "$B"/key.* "$B"/*.mbundle
mkdir -p "$B/src/hashes"
if [ ! -f "$WORK/sigs/hashes/million.mhdb" ]; then
  python3 - "$B/src/hashes/million.mhdb" <<'PY'
import random, sys
rnd = random.Random(42)
with open(sys.argv[1], "w") as f:
    for i in range(1000000):
        f.write("%064x\n" % rnd.getrandbits(256))
PY
else
  cp "$WORK/sigs/hashes/million.mhdb" "$B/src/hashes/"
fi
"$SIG" keygen "$B/key" >/dev/null
secs() { /usr/bin/time -f '%e %M' -o "$B/t" "$@" > "$B/out" 2>&1; cat "$B/t"; }
read -r build_s build_kb < <(secs "$SIG" build "$B/src" -o "$B/million.mbundle" --version 1 --key "$B/key.key")
read -r verify_s verify_kb < <(secs "$SIG" verify "$B/million.mbundle" --pubkey "$B/key.pub")
echo hi > "$B/tiny.txt"
read -r scan_s scan_kb < <(secs "$MAMORI" scan --no-cache --signatures "$B/million.mbundle" --pubkey "$B/key.pub" "$B/tiny.txt")
size_mb=$(awk -v b="$(stat -c %s "$B/million.mbundle")" 'BEGIN{printf "%.1f", b/1e6}')

# Rule profile over a 32 MB sample of real binaries.
"$SIG" profile "$RULES_DIR/yara-rules-all.yar" --corpus /usr/bin --top 15 --max-bytes 16777216 > "$B/profile.txt"

{
  echo "# Bundle benchmark"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, mamori $(git rev-parse --short HEAD 2>/dev/null || echo '?'). Produced by \`bench/bundle-bench.sh\`."
  echo
  echo "Hash-only bundle with 1,000,000 SHA-256 entries ($size_mb MB, tar.gz):"
  echo
  echo "| step | seconds | peak RSS MB |"
  echo "|---|---:|---:|"
  echo "| \`mamori-sig build\` (validate, sign, write) | $build_s | $((build_kb / 1024)) |"
  echo "| \`mamori-sig verify\` (read, verify signature and parts, load 1M entries) | $verify_s | $((verify_kb / 1024)) |"
  echo "| \`mamori scan --signatures BUNDLE\` of one tiny file (load + scan) | $scan_s | $((scan_kb / 1024)) |"
  echo
  echo "Target: load in under 2 s."
  echo
  echo "## Slowest rules of yara-rules-all.yar"
  echo
  echo "\`mamori-sig profile ../shared/bench/rules/yara-rules-all.yar --corpus /usr/bin --max-bytes 16M --top 15\`:"
  echo
  echo '```'
  cat "$B/profile.txt"
  echo '```'
} > "$OUT"
echo "wrote $OUT"
