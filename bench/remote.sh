#!/usr/bin/env bash
# bench/remote.sh — libraries on S3 next to the same files on the local disk
# (issue 7, acceptance point 4). It starts versitygw (a real S3 server, posix
# backend) on a free loopback port, uploads a generated library to it with
# rclone, and runs MuStServ against it and against the same folder on disk:
#   1. scan: N (10,000) small but real MP3 files (bench/genlib), one server
#      with the local library and one with the s3 library, each with a fresh
#      data folder: files/s, server CPU, and per file the fetches, bytes
#      fetched and requests versitygw saw (HEAD, GET, LIST); then 10 full-
#      length tracks each of MP3, FLAC and M4A (3 min, made by ffmpeg) on s3
#      alone: bytes fetched per track, as a share of its size;
#   2. streaming: CLIENTS (20) concurrent unpaced clients, each downloading
#      a SIZE_MB (50) MB file ROUNDS (3) times, local and s3 alternately,
#      REPS (3) times: MB/s, server CPU seconds per GB, extra RSS and
#      goroutines per stream, versitygw's CPU; then PLAYERS (50) paced
#      players (mustload) of a 192 kbit/s MP3;
#   3. cache: a server with [storage] cache_size > 0: what the origin sends
#      for a first viewer of a file, a second, a seek in it, and two first
#      viewers at once of another file.
#
# usage: bash bench/remote.sh [--quick]
#   --quick   2,000 files, 8 clients of 20 MB once, 1 rep, 10 players: checks
#             the script (about a minute and a half).
#
# Environment: MUSTSERV_BIN=path runs that binary instead of building one;
# N, CLIENTS, SIZE_MB, ROUNDS, REPS, PLAYERS override the sizes above;
# VERSITYGW=path (default: versitygw in PATH or ~/go/bin); KEEP=1 keeps the
# work folder (logs, versitygw's access log). Needs curl, jq, rclone, ffmpeg
# and versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0).
set -euo pipefail

# shellcheck source=bench/args.sh
. "$(dirname "$0")/args.sh"
if [ "$quick" = 1 ]; then
  n=${N:-2000} clients=${CLIENTS:-8} size_mb=${SIZE_MB:-20} rounds=${ROUNDS:-1} reps=${REPS:-1} players=${PLAYERS:-10}
else
  n=${N:-10000} clients=${CLIENTS:-20} size_mb=${SIZE_MB:-50} rounds=${ROUNDS:-3} reps=${REPS:-3} players=${PLAYERS:-50}
fi
for v in "$n" "$clients" "$size_mb" "$rounds" "$reps" "$players"; do
  case $v in [1-9] | [1-9][0-9]*) ;; *) echo "remote.sh: N, CLIENTS, SIZE_MB, ROUNDS, REPS, PLAYERS must be positive numbers" >&2; exit 2 ;; esac
done
vgw_bin=${VERSITYGW:-$(command -v versitygw || echo "$HOME/go/bin/versitygw")}
for t in curl jq rclone ffmpeg ss "$vgw_bin"; do
  command -v "$t" >/dev/null || { echo "remote.sh: needs $t" >&2; exit 1; }
done

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3
work=$(mktemp -d "${TMPDIR:-/tmp}/mustserv-remote.XXXXXX")
vgw_pid="" ms_pids=() client_pids=() cur_pid=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pids "${client_pids[@]}" $cur_pid "${ms_pids[@]}" $vgw_pid
  if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
# shellcheck source=bench/lib.sh
. bench/lib.sh

# --- build ---------------------------------------------------------------
# Into the work folder, so that someone else's build of bin/mustserv during
# the run cannot change what is measured.
if [ -n "${MUSTSERV_BIN:-}" ]; then
  cp "$MUSTSERV_BIN" "$work/mustserv"
else
  echo "building mustserv and mustload ..." >&2
  run env CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/mustserv" ./cmd/mustserv
fi
run go build -o "$work/mustload" ./cmd/mustload
ms_bin=$work/mustserv

# --- the files ---------------------------------------------------------------
# lib/ is the local library and what is uploaded: scan/ (genlib), long/<fmt>/
# (full-length tracks), media/ (the streamed files).
lib=$work/lib
mkdir -p "$lib/long/mp3" "$lib/long/flac" "$lib/long/m4a" "$lib/media"
echo "generating $n files ..." >&2
run go run ./bench/genlib -n "$n" -out "$lib/scan" >"$work/genlib.out"
files=$(find "$lib/scan" -name '*.mp3' | wc -l)

# Full-length tracks: one 3-minute encode per format (pink noise under a
# chord, so that FLAC compresses as music does, roughly), then 10 copies
# with their own tags (remuxed, so every file has its own bytes: the index
# tells copies by content).
echo "encoding full-length tracks ..." >&2
src="anoisesrc=color=pink:amplitude=0.25:duration=180:sample_rate=44100"
chord="sine=f=220:d=180,aformat=channel_layouts=mono"
run ffmpeg -v error -f lavfi -i "$src" -f lavfi -i "$chord" \
  -filter_complex '[0][1]amix=inputs=2,aformat=channel_layouts=stereo' -ar 44100 \
  -c:a pcm_s16le "$work/base.wav"
run ffmpeg -v error -i "$work/base.wav" -c:a libmp3lame -b:a 192k -id3v2_version 3 "$work/base.mp3"
run ffmpeg -v error -i "$work/base.wav" -c:a flac "$work/base.flac"
run ffmpeg -v error -i "$work/base.wav" -c:a aac -b:a 192k -movflags +faststart "$work/base.m4a"
for fmt in mp3 flac m4a; do
  for i in $(seq 10); do
    run ffmpeg -v error -i "$work/base.$fmt" -map 0 -c copy -metadata title="Long Track $i ($fmt)" \
      -metadata artist="Bench Artist $i" -metadata album="Bench Album" -metadata track="$i" \
      -metadata date=2024 $([ "$fmt" = mp3 ] && echo -id3v2_version 3) \
      $([ "$fmt" = m4a ] && echo -movflags +faststart) "$lib/long/$fmt/track$i.$fmt"
  done
done
cp "$lib/long/mp3/track1.mp3" "$lib/media/paced.mp3"
rm -f "$work/base.wav"
# Real bytes (random: nothing compresses them on the way).
run head -c $((size_mb * 1000000)) /dev/urandom >"$lib/media/big.bin"
run head -c $((size_mb * 1000000)) /dev/urandom >"$lib/media/big2.bin"
big=$((size_mb * 1000000))

# --- versitygw ---------------------------------------------------------------
vgw_port=$(free_port)
mkdir -p "$work/s3root"
# --quiet: no request line on stdout (that costs versitygw about as much CPU
# as serving the request); the access log (one line per request, with the
# S3 operation) is what the script counts requests from.
ROOT_ACCESS_KEY=bench ROOT_SECRET_KEY=benchsecret "$vgw_bin" --quiet --access-log "$work/vgw-access.log" \
  --port "127.0.0.1:$vgw_port" posix "$work/s3root" >"$work/vgw.log" 2>&1 &
vgw_pid=$!
for i in $(seq 100); do
  code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$vgw_port/" || true)
  [ "$code" = 403 ] && break
  kill -0 "$vgw_pid" 2>/dev/null || { cat "$work/vgw.log" >&2; die "versitygw did not start"; }
  sleep 0.1
done
[ "$code" = 403 ] || die "versitygw does not answer on port $vgw_port"
export RCLONE_CONFIG_VGW_TYPE=s3 RCLONE_CONFIG_VGW_PROVIDER=Other RCLONE_CONFIG_VGW_ACCESS_KEY_ID=bench \
  RCLONE_CONFIG_VGW_SECRET_ACCESS_KEY=benchsecret RCLONE_CONFIG_VGW_ENDPOINT="http://127.0.0.1:$vgw_port" \
  RCLONE_CONFIG_VGW_REGION=us-east-1 RCLONE_CONFIG_VGW_FORCE_PATH_STYLE=true
# Uploaded through S3, not copied into versitygw's folder: a file written
# there directly has no ETag attribute, and GETs with If-Match fail (412).
rcl() { run env -u AWS_CA_BUNDLE rclone --config /dev/null "$@"; }
echo "uploading to versitygw ..." >&2
t0=$(date +%s.%N)
rcl mkdir vgw:bench
rcl copy --transfers 16 --checkers 16 --no-check-dest "$lib" vgw:bench
up_s=$(echo "$(date +%s.%N) - $t0" | bc)
uploaded=$(find "$work/s3root/bench" -type f | wc -l)
[ "$uploaded" = "$(find "$lib" -type f | wc -l)" ] || die "uploaded $uploaded files, the library has $(find "$lib" -type f | wc -l)"

# --- helpers -------------------------------------------------------------------
s3url() { echo "s3://bench/$1?endpoint=http://127.0.0.1:$vgw_port&region=us-east-1"; }

# config NAME LIBRARY WHERE [EXTRA] writes $work/NAME.toml: one library,
# a local folder (WHERE starts with /) or an s3 prefix.
config() {
  local f=$work/$1.toml
  {
    printf '[[library]]\nname = "%s"\n' "$2"
    case $3 in
      /*) printf 'path = "%s"\n' "$3" ;;
      *) printf 'url = "%s"\naccess_key = "bench"\nsecret_key = "benchsecret"\n' "$(s3url "$3")" ;;
    esac
    printf '%b' "${4:-}"
  } >"$f"
}

# start NAME sets pid and base: a server of $work/NAME.toml with its own
# data folder, after its first scan.
start() {
  local port
  port=$(free_port "$vgw_port")
  rm -rf "$work/data-$1"
  "$ms_bin" serve --no-auth --config "$work/$1.toml" --data "$work/data-$1" --listen "127.0.0.1:$port" \
    >"$work/$1.out" 2>"$work/$1.log" &
  pid=$!
  ms_pids+=("$pid")
  base=http://127.0.0.1:$port
  wait_http "$base/healthz" "$pid" || { tail "$work/$1.log" >&2; die "$1: server did not start"; }
  wait_scan "$1"
}

# wait_scan NAME waits (at most 10 minutes) for the server's first scan.
wait_scan() {
  local i s
  for i in $(seq 6000); do
    kill -0 "$pid" 2>/dev/null || die "$1: server died (log: $work/$1.log)"
    s=$(curl -sf -m 5 "$base/api/scan" | jq -r '"\(.running) \(.finished // "")"' || true)
    case $s in "false "?*) return 0 ;; esac
    sleep 0.1
  done
  die "$1: scan did not finish within 10 minutes"
}

metric() { curl -sf -m 5 "$base/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
rss_kb() { awk -v k="${2:-VmRSS}:" '$1 == k {print $2}' "/proc/$1/status"; }
# ops prints the number of requests of each S3 operation versitygw has
# logged so far: "HeadObject GetObject ListObjectsV2".
ops() {
  sleep 0.3 # its log is written after the answer
  awk '{for (i = 1; i <= NF; i++) if ($i ~ /^s3_/) {c[$i]++; break}}
    END {printf "%d %d %d\n", c["s3_HeadObject"], c["s3_GetObject"], c["s3_ListObjectsV2"]}' "$work/vgw-access.log"
}
# div A B [FORMAT] prints A / B (0 if B is 0); both may be expressions.
div() { awk "BEGIN {b = ($2); printf \"${3:-%.2f}\", (b == 0 ? 0 : ($1) / b)}"; }
# stop stops the server $pid.
stop() {
  local p keep=()
  stop_pids "$pid"
  for p in "${ms_pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  ms_pids=("${keep[@]}")
}
alive() {
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo
vgw_version=$(go version -m "$vgw_bin" 2>/dev/null | awk '$1 == "mod" {print $3}' || true)
echo "MuStServ $("$ms_bin" version | sed 's/^mustserv //') vs versitygw ${vgw_version:-(version unknown)} (posix), $(nproc) cores, loopback"
echo "uploaded $uploaded files ($(du -sh "$lib" | cut -f1)) with rclone in $(printf %.1f "$up_s") s"

# --- 1. scan -----------------------------------------------------------------
echo
echo "== 1. scan of $files MP3 files ($(du -sh "$lib/scan" | cut -f1), $(find "$lib/scan" -type d | wc -l) folders), fresh index, scan workers default"
printf '%-34s %12s %12s %8s\n' "" local s3 ratio
config scan-local Scan "$lib/scan"
config scan-s3 Scan scan
declare -A sc
for where in local s3; do
  v0=$(ticks "$vgw_pid")
  read -r h0 g0 l0 < <(ops)
  start "scan-$where"
  st=$(curl -sf "$base/api/scan")
  [ "$(jq .files <<<"$st")" = "$files" ] || die "scan-$where: indexed $(jq .files <<<"$st") of $files files"
  [ "$(jq .failed <<<"$st")" = 0 ] || die "scan-$where: $(jq .failed <<<"$st") files failed"
  sc[$where.s]=$(echo "$(date -d "$(jq -r .finished <<<"$st")" +%s.%N) - $(date -d "$(jq -r .started <<<"$st")" +%s.%N)" | bc)
  sc[$where.cpu]=$(div "$(ticks "$pid")" "$hz")
  sc[$where.hwm]=$(div "$(rss_kb "$pid" VmHWM)" 1024 %.1f)
  sc[$where.fetches]=$(metric mustserv_storage_fetches_total)
  sc[$where.bytes]=$(metric mustserv_storage_fetched_bytes_total)
  sc[$where.vcpu]=$(div $(($(ticks "$vgw_pid") - v0)) "$hz")
  read -r h1 g1 l1 < <(ops)
  sc[$where.ops]="$((h1 - h0)) $((g1 - g0)) $((l1 - l0))"
  stop
done
row() { printf '%-34s %12s %12s %8s\n' "$1" "$2" "$3" "$(div "$3" "$2")"; }
row "scan time (s)" "$(printf %.1f "${sc[local.s]}")" "$(printf %.1f "${sc[s3.s]}")"
row "files/s" "$(div "$files" "${sc[local.s]}" %.0f)" "$(div "$files" "${sc[s3.s]}" %.0f)"
row "server CPU (s, start-up included)" "${sc[local.cpu]}" "${sc[s3.cpu]}"
row "server CPU per file (ms)" "$(div "${sc[local.cpu]}" "$files/1000" %.3f)" "$(div "${sc[s3.cpu]}" "$files/1000" %.3f)"
row "peak RSS (MB, VmHWM)" "${sc[local.hwm]}" "${sc[s3.hwm]}"
read -r h g l <<<"${sc[s3.ops]}"
file_bytes=$(find "$lib/scan" -name '*.mp3' -printf '%s\n' | awk '{s += $1} END {print s}')
echo "s3, per file: $(div "${sc[s3.fetches]}" "$files") fetches (range GETs), $(div "${sc[s3.bytes]}" "$files" %.0f) bytes fetched (files average $(div "$file_bytes" "$files" %.0f) bytes: $(div "${sc[s3.bytes]}" "$file_bytes/100" %.0f) %)"
echo "s3, requests versitygw saw: HEAD $h, GET $g, LIST $l = $(div $((h + g + l)) "$files") per file; versitygw CPU ${sc[s3.vcpu]} s ($(div "${sc[s3.vcpu]}" "$files/1000" %.3f) ms per file)"

echo
echo "== full-length tracks on s3 (10 per format, 3 min, 192 kbit/s MP3 and AAC, FLAC), probed by a fresh index each"
printf '%-6s %10s %10s %14s %10s %16s\n' format "MB/file" "fetches" "KB fetched" "% of file" "requests (H/G/L)"
for fmt in mp3 flac m4a; do
  config "long-$fmt" Long "long/$fmt"
  read -r h0 g0 l0 < <(ops)
  start "long-$fmt"
  st=$(curl -sf "$base/api/scan")
  [ "$(jq .files <<<"$st")" = 10 ] && [ "$(jq .failed <<<"$st")" = 0 ] || die "long-$fmt: $(jq -c '{files, failed, errors}' <<<"$st")"
  fb=$(find "$lib/long/$fmt" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
  fe=$(metric mustserv_storage_fetches_total)
  by=$(metric mustserv_storage_fetched_bytes_total)
  read -r h1 g1 l1 < <(ops)
  printf '%-6s %10s %10s %14s %10s %16s\n' "$fmt" "$(div "$fb" 10e6 %.2f)" "$(div "$fe" 10 %.1f)" \
    "$(div "$by" 10240 %.1f)" "$(div "$by" "$fb/100" %.2f)" "$((h1 - h0))/$((g1 - g0))/$((l1 - l0))"
  stop
done

# --- 2. streaming ---------------------------------------------------------------
echo
echo "== 2. streaming: $clients concurrent unpaced clients, each downloading a $size_mb MB file $rounds times (keep-alive), local vs s3 (read_ahead default), $reps run(s) each"
config stream-local Media "$lib/media"
config stream-s3 Media media
# Every run has a server of its own, started for it: a Go process keeps
# the heap it grew for a while, so a second run on the same server would
# start from a higher idle RSS and show a smaller increase.

# greedy WHERE sets the results of one run in r_*.
greedy() {
  local where=$1 i t0 t1 c0 c1 v0 v1 f0 f1 idle g0 gmax=0 g
  start "stream-$where"
  idle=$(rss_kb "$pid")
  g0=$(metric go_goroutines)
  echo 5 >"/proc/$pid/clear_refs" || true # resets VmHWM to the current RSS
  c0=$(ticks "$pid") v0=$(ticks "$vgw_pid") f0=$(metric mustserv_storage_fetched_bytes_total)
  t0=$(date +%s.%N)
  client_pids=()
  for i in $(seq "$clients"); do
    curl -s -m 300 $(printf -- '-o /dev/null %s ' $(yes "$base/stream/Media/big.bin" | head -n "$rounds")) \
      -w '%{http_code} %{size_download}\n' >"$work/client.$i" &
    client_pids+=($!)
  done
  # Sample the goroutines while they run (at most 300 s, as curl's -m).
  for i in $(seq 3000); do
    g=$(metric go_goroutines || echo 0)
    [ "${g:-0}" -gt "$gmax" ] && gmax=$g
    alive "${client_pids[@]}" || break
    sleep 0.1
  done
  for i in "${client_pids[@]}"; do wait "$i" || true; done
  t1=$(date +%s.%N)
  client_pids=()
  c1=$(ticks "$pid") v1=$(ticks "$vgw_pid") f1=$(metric mustserv_storage_fetched_bytes_total)
  for i in $(seq "$clients"); do
    [ "$(sort -u "$work/client.$i")" = "200 $big" ] && [ "$(wc -l <"$work/client.$i")" = "$rounds" ] ||
      die "$where client $i: $(sort -u "$work/client.$i" | tr '\n' ' ') (status, bytes)"
  done
  local secs gb
  secs=$(echo "$t1 - $t0" | bc)
  gb=$(echo "$rounds * $clients * $big / 1000000000" | bc -l)
  r_mbs=$(div "$rounds * $clients * $big / 1000000" "$secs" %.0f)
  r_cpu=$(div "$((c1 - c0))" "$hz * $gb" %.3f)
  r_vcpu=$(div "$((v1 - v0))" "$hz * $gb" %.3f)
  r_rss=$(div "$(rss_kb "$pid" VmHWM) - $idle" "1024 * $clients" %.2f)
  r_gor=$(div "$gmax - $g0" "$clients" %.1f)
  r_origin=$(div "${f1:-0} - ${f0:-0}" "$rounds * $clients * $big" %.3f)
  stop
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
declare -A acc
for rep in $(seq "$reps"); do
  if [ $((rep % 2)) = 1 ]; then order="local s3"; else order="s3 local"; fi
  for where in $order; do
    greedy "$where"
    for k in mbs cpu vcpu rss gor origin; do v=r_$k; acc[$where.$k]+=" ${!v}"; done
    echo "run $rep $where: $r_mbs MB/s, CPU $r_cpu s/GB (versitygw $r_vcpu), +$r_rss MB and +$r_gor goroutines per stream, origin bytes/delivered $r_origin" >&2
  done
done
printf '%-44s %10s %10s %8s\n' "median of $reps" local s3 ratio
srow() {
  local a b
  a=$(median <<<"${acc[local.$2]}") b=$(median <<<"${acc[s3.$2]}")
  printf '%-44s %10s %10s %8s\n' "$1" "$a" "$b" "$(div "$b" "$a")"
}
srow "throughput, all clients (MB/s)" mbs
srow "server CPU per GB delivered (s)" cpu
srow "extra RSS per stream (MB, peak - idle)" rss
srow "extra goroutines per stream (peak - idle)" gor
echo "versitygw CPU per GB (s), s3 runs: $(median <<<"${acc[s3.vcpu]}") (it shares the $(nproc) cores with the server and curl)"
echo "origin bytes per delivered byte, s3 runs: $(median <<<"${acc[s3.origin]}")"
echo "runs: MB/s local [${acc[local.mbs]} ] s3 [${acc[s3.mbs]} ]; CPU s/GB local [${acc[local.cpu]} ] s3 [${acc[s3.cpu]} ]"

echo
echo "== paced: $players players (mustload) of a 192 kbit/s MP3 ($(div "$(stat -c %s "$lib/media/paced.mp3")" 1e6 %.1f) MB), joining 20 ms apart, 20 s each, pacing defaults"
printf '%-44s %10s %10s\n' "" local s3
declare -A pc
for where in local s3; do
  start "stream-$where"
  idle=$(rss_kb "$pid") g0=$(metric go_goroutines)
  echo 5 >"/proc/$pid/clear_refs" || true
  c0=$(ticks "$pid") v0=$(ticks "$vgw_pid") f0=$(metric mustserv_storage_fetched_bytes_total)
  "$work/mustload" -url "$base/stream/Media/paced.mp3@192k" -players "$players" -join 20ms -watch 20s \
    -summary -timeout 90s -out "$work/load-$where.json" 2>"$work/load-$where.err" &
  cur_pid=$!
  gmax=0
  for i in $(seq 1000); do
    g=$(metric go_goroutines || echo 0)
    [ "${g:-0}" -gt "$gmax" ] && gmax=$g
    kill -0 "$cur_pid" 2>/dev/null || break
    sleep 0.1
  done
  wait "$cur_pid" || die "mustload failed: $(cat "$work/load-$where.err")"
  cur_pid=""
  s=$work/load-$where.json
  pc[$where.ok]="$(jq -r '"\(.ok)/\(.failed)/\(.stalls)"' "$s")"
  pc[$where.start]="$(jq -r '"\(.startup_ms.p50)/\(.startup_ms.p95)"' "$s")"
  pc[$where.rate]="$(jq -r '"\(.rate_ratio.min)/\(.rate_ratio.median)/\(.rate_ratio.max)"' "$s")"
  pc[$where.mb]=$(div "$(jq .bytes "$s")" 1e6 %.1f)
  pc[$where.cpu]=$(div "$(($(ticks "$pid") - c0))" "$hz" %.2f)
  pc[$where.vcpu]=$(div "$(($(ticks "$vgw_pid") - v0))" "$hz" %.2f)
  pc[$where.rss]=$(div "$(rss_kb "$pid" VmHWM) - $idle" "$players" %.0f)
  pc[$where.gor]=$(div "$gmax - $g0" "$players" %.1f)
  f1=$(metric mustserv_storage_fetched_bytes_total)
  pc[$where.origin]=$(div "${f1:-0} - ${f0:-0}" 1e6 %.1f)
  stop
done
prow() { printf '%-44s %10s %10s\n' "$1" "${pc[local.$2]}" "${pc[s3.$2]}"; }
prow "ok / failed / stalls" ok
prow "startup ms p50/p95" start
prow "delivered rate/bitrate min/median/max" rate
prow "MB delivered" mb
prow "MB fetched from the origin" origin
prow "server CPU (s)" cpu
prow "versitygw CPU (s)" vcpu
prow "extra RSS per player (KB, peak - idle)" rss
prow "extra goroutines per player (peak - idle)" gor

# --- 3. cache --------------------------------------------------------------------
echo
echo "== 3. range cache: s3 library, [storage] cache_size = 1 GiB"
config cache Media media "[storage]\ncache_size = 1073741824\ncache_dir = \"$work/rcache\"\n"
start cache
# view NAME URL [RANGE] downloads and prints what the origin sent for it.
view() {
  local f0 h0 g0 l0 f1 h1 g1 l1 c0 c1 out
  f0=$(metric mustserv_storage_fetched_bytes_total) c0=$(metric mustserv_storage_cache_hit_bytes_total)
  read -r h0 g0 l0 < <(ops)
  if [ -n "${3:-}" ]; then
    out=$(curl -s -m 120 -r "$3" -o /dev/null -w '%{http_code} %{size_download} %{speed_download}' "$2")
  else
    out=$(curl -s -m 120 -o /dev/null -w '%{http_code} %{size_download} %{speed_download}' "$2")
  fi
  f1=$(metric mustserv_storage_fetched_bytes_total) c1=$(metric mustserv_storage_cache_hit_bytes_total)
  read -r h1 g1 l1 < <(ops)
  read -r code size speed <<<"$out"
  case $code in 200 | 206) ;; *) die "$1: status $code" ;; esac
  printf '%-34s %10s %12s %12s %9s %8s\n' "$1" "$size" "$((f1 - f0))" "$((c1 - c0))" "$((g1 - g0))" "$(div "$speed" 1e6 %.0f)"
}
printf '%-34s %10s %12s %12s %9s %8s\n' "" "bytes" "origin bytes" "cache bytes" "origin GETs" "MB/s"
view "big.bin, first viewer" "$base/stream/Media/big.bin"
view "big.bin, second viewer" "$base/stream/Media/big.bin"
view "big.bin, a seek (its middle fifth)" "$base/stream/Media/big.bin" "$((big * 2 / 5))-$((big * 3 / 5 - 1))"
f0=$(metric mustserv_storage_fetched_bytes_total)
curl -s -m 120 -o /dev/null "$base/stream/Media/big2.bin" &
client_pids=($!)
curl -s -m 120 -o /dev/null "$base/stream/Media/big2.bin" &
client_pids+=($!)
for i in "${client_pids[@]}"; do wait "$i" || true; done
client_pids=()
f1=$(metric mustserv_storage_fetched_bytes_total)
echo "big2.bin, two first viewers at once: origin bytes $((f1 - f0)) = $(div "$((f1 - f0))" "$big") x the file"
view "big2.bin, a third viewer" "$base/stream/Media/big2.bin"
echo "cache on disk: $(metric mustserv_storage_cache_bytes) bytes (mustserv_storage_cache_bytes), $(du -sb "$work/rcache" | cut -f1) in its folder"
stop
echo
echo "load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise)"
