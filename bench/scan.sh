#!/usr/bin/env bash
# bench/scan.sh — the library index at scale (issue 5, acceptance points 1,
# 2 and 5): a generated library of N (100,000) small but real MP3 files with
# varied tags in Artist/Year - Album/ folders (bench/genlib), served by
# MuStServ with a fresh data folder. It prints:
#   - first scan: time, files/s, the server's peak RSS (VmHWM) by its end,
#     the index's size on disk;
#   - rescan with nothing changed (POST /api/scan; page cache warm);
#   - watcher: time from a new file appearing (renamed into place) to it
#     being found by /api/search, 10 times;
#   - search latency over HTTP, 1,000 queries (bench/searchbench);
#   - idle RSS: the server restarted on the built index, after its start-up
#     rescan, 5 s and 70 s later (the index's idle connections and their
#     page caches are closed after a minute).
#
# usage: bash bench/scan.sh [--quick]
#   --quick   10,000 files and a 20 s idle wait: checks the script.
#
# Environment: MUSTSERV_BIN=path runs that binary instead of building one;
# N overrides the number of files; WORK=dir keeps the generated library
# there between runs (default /tmp/mustserv-scanbench; it is reused when
# it has N files); KEEP=1 keeps the server's logs. Needs curl and jq.
set -euo pipefail

# shellcheck source=bench/args.sh
. "$(dirname "$0")/args.sh"
if [ "$quick" = 1 ]; then
  n=${N:-10000} idle_wait=20
else
  n=${N:-100000} idle_wait=70
fi
case $n in [1-9] | [1-9][0-9]* ) ;; *) echo "scan.sh: N must be a positive number" >&2; exit 2 ;; esac
for t in curl jq; do
  command -v "$t" >/dev/null || { echo "scan.sh: needs $t" >&2; exit 1; }
done

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3
work=${WORK:-/tmp/mustserv-scanbench}
lib=$work/lib-$n/Library
data=$work/data
logs=$(mktemp -d)
pid=""

cleanup() {
  local rc=$?
  stop_pids "$pid" "${cur_pid:-}"
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $logs"; else rm -rf "$logs"; fi
  exit "$rc"
}
# shellcheck source=bench/lib.sh
. bench/lib.sh

mkdir -p "$work"
if [ -n "${MUSTSERV_BIN:-}" ]; then
  bin=$MUSTSERV_BIN
else
  make -s build
  bin=$PWD/bin/mustserv
fi
go build -o "$work/searchbench" ./bench/searchbench

if [ ! -f "$work/lib-$n/.done" ]; then
  echo "generating $n files in $lib"
  rm -rf "$work/lib-$n"
  t0=$(date +%s.%N)
  run go run ./bench/genlib -n "$n" -out "$lib"
  touch "$work/lib-$n/.done"
  echo "generated in $(echo "$(date +%s.%N) - $t0" | bc) s"
fi
files=$(find "$lib" -name '*.mp3' | wc -l)
echo "library: $files MP3 files, $(find "$lib" -type d | wc -l) folders, $(du -sh "$lib" | cut -f1) on disk"

port=$(free_port)
base=http://127.0.0.1:$port

start() {
  "$bin" serve --no-auth --data "$data" --listen "127.0.0.1:$port" "$lib" >>"$logs/server.log" 2>&1 &
  pid=$!
  wait_http "$base/healthz" "$pid" || die "server did not start (log: $logs/server.log)"
}

# scan_state prints "running finished" of /api/scan.
scan_state() { curl -sf "$base/api/scan" | jq -r '"\(.running) \(.finished // "")"'; }

# wait_scan waits until a scan that finished after $1 (an RFC 3339 time or
# "") is reported, at most 30 minutes.
wait_scan() {
  local after=$1 i state fin
  for i in $(seq 18000); do
    kill -0 "$pid" 2>/dev/null || die "server died (log: $logs/server.log)"
    state=$(scan_state || true)
    fin=${state#* }
    if [ "${state%% *}" = false ] && [ -n "$fin" ] && [ "$fin" != "$after" ]; then
      return 0
    fi
    sleep 0.1
  done
  die "scan did not finish within 30 minutes"
}

# scan_seconds prints the last scan's duration in seconds.
scan_seconds() {
  local s f
  s=$(curl -sf "$base/api/scan" | jq -r .started)
  f=$(curl -sf "$base/api/scan" | jq -r .finished)
  echo "$(date -d "$f" +%s.%N) - $(date -d "$s" +%s.%N)" | bc
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }
mb() { echo "scale=1; $1 / 1024" | bc; }

echo
echo "== first scan (fresh index)"
rm -rf "$data"
start
wait_scan ""
first=$(scan_seconds)
progress=$(curl -sf "$base/api/scan")
indexed=$(jq .files <<<"$progress")
failed=$(jq .failed <<<"$progress")
peak=$(hwm_kb)
size=$(du -cb "$data"/index.db* | tail -1 | cut -f1)
printf 'files %s (failed %s) in %.1f s = %.0f files/s; peak RSS %s MB; index %s MB\n' \
  "$indexed" "$failed" "$first" "$(echo "$indexed / $first" | bc -l)" "$(mb "$peak")" \
  "$(echo "scale=1; $size / 1048576" | bc)"
[ "$indexed" = "$files" ] || die "indexed $indexed files, the library has $files"

echo
echo "== rescan, nothing changed"
last=$(jq -r .finished <<<"$progress")
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/api/scan")
[ "$code" = 202 ] || die "POST /api/scan answered $code"
wait_scan "$last"
re=$(scan_seconds)
probed=$(curl -sf "$base/api/scan" | jq .probed)
printf 'rescan %.2f s (probed %s)\n' "$re" "$probed"

echo
echo "== watcher: a new file until search finds it"
src=$(find "$lib" -name '*.mp3' -print -quit)
mkdir -p "$lib/zz watch"
lat=()
for i in $(seq 10); do
  word="wtest${i}x$RANDOM"
  cp "$src" "$lib/.tmp-$word"
  t0=$(date +%s%N)
  mv "$lib/.tmp-$word" "$lib/zz watch/$word.mp3"
  found=0
  for _ in $(seq 1000); do
    total=$(curl -sf "$base/api/search?q=$word" | jq .total)
    if [ "$total" -ge 1 ]; then found=1; break; fi
    sleep 0.01
  done
  [ "$found" = 1 ] || die "$word not found after 10+ s"
  lat+=("$(( ($(date +%s%N) - t0) / 1000000 ))")
done
sorted=$(printf '%s\n' "${lat[@]}" | sort -n)
echo "ms: ${lat[*]} (median $(sed -n 5p <<<"$sorted"), max $(tail -1 <<<"$sorted"))"
rm -rf "$lib/zz watch"

echo
echo "== search latency over HTTP"
run "$work/searchbench" -url "$base" -n 1000

echo
echo "== idle RSS, restarted on the built index"
stop_pids "$pid"
pid=""
start
wait_scan ""
sleep 5
idle5=$(rss_kb)
sleep $((idle_wait - 5))
idle=$(rss_kb)
printf 'after the start-up rescan: +5 s %s MB, +%d s %s MB\n' "$(mb "$idle5")" "$idle_wait" "$(mb "$idle")"
