#!/usr/bin/env bash
# bench/pace-cost.sh — what pacing costs: MuStServ's pacer loop against
# nginx's limit_rate, side by side in one run (issue 4, acceptance point 5).
#
# Both servers serve the same generated files, each pinned to core 0 (nginx:
# one worker), the load client (bench/paceclient) pinned to core 1:
#   1. N_VIDEO (1,000) streams of a ~5 Mbit/s H.264 MPEG-TS, REPS (3) runs
#      per server in alternating order: extra RSS per stream and server
#      CPU-seconds per Gbit delivered, over WINDOW (20) seconds from 2 s after
#      every stream is past its burst; after the first window, `strace -c -f`
#      on each server for 5 s while the streams go on.
#   2. N_AUDIO (10,000) streams of a 128 kbit/s CBR MP3: failures, every
#      stream's delivered rate against its target (within 5%), RSS.
# nginx gets limit_rate = the rate MuStServ paces at (probed peak x 1.25 / 8
# bytes/s) and limit_rate_after = MuStServ's burst (8 s of the peak);
# MuStServ runs with its defaults. CPU is the server's utime+stime from
# /proc, and beside it the same plus ksoftirqd/0's: on loopback the
# receiving half of TCP runs on the sender's core, in the sender's system
# call or, when it piles up, in ksoftirqd.
#
# usage: bash bench/pace-cost.sh [--quick]
#   --quick   200 and 1,000 streams, 8 s windows, 1 run: checks the script.
#
# Environment: MUSTSERV_BIN=path runs that binary instead of building one;
# NGINX=path (default /usr/sbin/nginx); N_VIDEO, N_AUDIO, WINDOW (seconds),
# REPS override the sizes; SRC_ADDRS (4) spreads the client over 127.0.0.1
# to .K; PERF=1 builds MuStServ with symbols and prints a perf profile of it
# taken after the 10,000-stream window; KEEP=1 keeps the work folder (logs,
# client output, strace and perf data). Takes about 5 minutes; raises
# `ulimit -n` to 20000 (the hard limit must allow it).
set -euo pipefail

# shellcheck source=bench/args.sh
. "$(dirname "$0")/args.sh"
if [ "$quick" = 1 ]; then
  n_video=${N_VIDEO:-200} n_audio=${N_AUDIO:-1000} window=${WINDOW:-8} reps=${REPS:-1}
else
  n_video=${N_VIDEO:-1000} n_audio=${N_AUDIO:-10000} window=${WINDOW:-20} reps=${REPS:-3}
fi
case $reps in [1-9]) ;; *) echo "pace-cost.sh: REPS must be 1..9" >&2; exit 2 ;; esac
for v in "$n_video" "$n_audio" "$window"; do
  case $v in [1-9] | [1-9][0-9] | [1-9][0-9][0-9] | [1-9][0-9][0-9][0-9] | 1[0-8][0-9][0-9][0-9]) ;;
    *) echo "pace-cost.sh: N_VIDEO, N_AUDIO and WINDOW must be 1..18999" >&2; exit 2 ;;
  esac
done
src_addrs=${SRC_ADDRS:-4}
nginx_bin=${NGINX:-/usr/sbin/nginx}
# The MuStServ defaults this script assumes (internal/config/example.toml).
factor=1.25 burst_s=8

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3
t_begin=$(date +%s)

tools="curl ss ffmpeg strace taskset pgrep $nginx_bin"
[ "${PERF:-0}" = 1 ] && tools+=" perf"
for tool in $tools; do
  command -v "$tool" >/dev/null || {
    echo "pace-cost.sh: $tool not found" >&2
    exit 1
  }
done
[ "$(nproc)" -ge 2 ] || { echo "pace-cost.sh: needs 2 cores (server on 0, client on 1)" >&2; exit 1; }
ulimit -n 20000 || { echo "pace-cost.sh: cannot raise the open-files limit to 20000" >&2; exit 1; }

# --- cleanup: every process this script starts is recorded here ---------
work=""
ms_pid="" ngx_pid="" ngx_workers="" cur_pid=""
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  stop_pids $cur_pid $ms_pid $ngx_pid
  for pid in $ngx_workers; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "$work" ]; then
    if [ "${KEEP:-0}" = 1 ]; then
      echo "pace-cost.sh: kept $work" >&2
    else
      rm -rf "$work"
    fi
  fi
  exit "$rc"
}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh" # traps (cleanup above), run, die



work=$(mktemp -d "${TMPDIR:-/tmp}/mustserv-pace.XXXXXX")
chmod 755 "$work" # nginx's worker runs as nobody
media=$work/media
mkdir -p "$media" "$work/data" "$work/nginx/tmp"
chmod 755 "$media"

# --- build -----------------------------------------------------------------
# Into the work folder: someone else's build of bin/ during the run cannot
# change what is measured.
echo "building mustserv and paceclient ..." >&2
if [ -n "${MUSTSERV_BIN:-}" ]; then
  cp "$MUSTSERV_BIN" "$work/mustserv"
else
  # As `make build`; with PERF=1 the symbols stay for perf (same code).
  strip="-s -w"
  [ "${PERF:-0}" = 1 ] && strip=""
  run env CGO_ENABLED=0 go build -trimpath -ldflags="$strip" -o "$work/mustserv" ./cmd/mustserv
fi
run env CGO_ENABLED=0 go build -trimpath -o "$work/paceclient" ./bench/paceclient
ms_bin=$work/mustserv

# --- media -------------------------------------------------------------------
# A 130 s H.264 + AAC transport stream muxed at a constant 5 Mbit/s, and a
# 300 s CBR 128 kbit/s MP3 (a tone over pink noise, so LAME has to spend
# its bits). The MP3 is long enough that no stream reaches its end: 8 s of
# burst plus ~60 s of connecting, settling and window at 1.25x.
echo "generating media ..." >&2
run ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine=frequency=440:sample_rate=48000 -t 130 \
  -c:v libx264 -preset ultrafast -b:v 4600k -maxrate 4600k -bufsize 2300k -x264-params nal-hrd=cbr \
  -c:a aac -b:a 128k -f mpegts -muxrate 5000000 "$media/video.ts" || die "ffmpeg (video) failed"
run ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i sine=frequency=440:sample_rate=44100 -f lavfi -i anoisesrc=color=pink:sample_rate=44100:amplitude=0.3 \
  -filter_complex amix=inputs=2 -t 300 -ac 2 -c:a libmp3lame -b:a 128k "$media/audio.mp3" || die "ffmpeg (audio) failed"
chmod 644 "$media"/*
cat "$media"/* >/dev/null # both servers read from the page cache

# peak prints the rate (bit/s) MuStServ paces a file by, from `mustserv
# probe`: the peak bitrate scaled to the file's bytes (pace_bps).
peak() {
  "$ms_bin" probe --json "$1" | sed -n 's/.*"pace_bps":\([0-9]*\).*/\1/p'
}
v_peak=$(peak "$media/video.ts")
a_peak=$(peak "$media/audio.mp3")
[ -n "$v_peak" ] && [ -n "$a_peak" ] || die "mustserv probe found no peak bitrate"
# As stream.ServePaced computes them: rate = peak/8 bytes/s (integer),
# burst = rate x 8 s, paced rate = rate x factor.
v_rate=$((v_peak / 8)) a_rate=$((a_peak / 8))
v_burst=$((v_rate * burst_s)) a_burst=$((a_rate * burst_s))
v_paced=$(awk -v r="$v_rate" -v f="$factor" 'BEGIN {printf "%d", r * f + 0.5}')
a_paced=$(awk -v r="$a_rate" -v f="$factor" 'BEGIN {printf "%d", r * f + 0.5}')
echo "video.ts: peak $v_peak bit/s -> paced at $v_paced B/s after $v_burst B; audio.mp3: peak $a_peak bit/s -> $a_paced B/s after $a_burst B" >&2



# --- MuStServ: defaults, core 0 ----------------------------------------------
ms_port=$(free_port)
taskset -c 0 "$ms_bin" serve --no-auth --listen "127.0.0.1:$ms_port" --data "$work/data" "$media" \
  >"$work/mustserv.out" 2>"$work/mustserv.log" &
ms_pid=$!
ms_url=http://127.0.0.1:$ms_port
# The first request of each file probes it; these are the warm-up.
for f in video.ts audio.mp3; do
  wait_http "$ms_url/stream/media/$f" "$ms_pid" || {
    cat "$work/mustserv.log" >&2
    die "mustserv did not start"
  }
done

# --- nginx: one worker, core 0 -------------------------------------------------
ngx_port=$(free_port "$ms_port")
ngx_url=http://127.0.0.1:$ngx_port
cat >"$work/nginx/nginx.conf" <<EOF
# Generated by bench/pace-cost.sh. One worker: the server gets one core, as
# MuStServ does. open_file_cache shares one descriptor per file among the
# requests (as MuStServ's pacer does): without it 10,000 streams need
# 20,000 descriptors, the machine's limit.
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;

events {
    worker_connections 12000;
    use epoll;
}

http {
    default_type application/octet-stream;
    access_log $work/nginx/access.log combined;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=64 inactive=5m;

    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;

    server {
        listen 127.0.0.1:$ngx_port backlog=4096;
        root $media;
        location = /video.ts {
            limit_rate $v_paced;
            limit_rate_after $v_burst;
        }
        location = /audio.mp3 {
            limit_rate $a_paced;
            limit_rate_after $a_burst;
        }
    }
}
EOF
taskset -c 0 "$nginx_bin" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" \
  >"$work/nginx/stdout" 2>&1 &
ngx_pid=$!
for f in video.ts audio.mp3; do
  wait_http "$ngx_url/$f" "$ngx_pid" || {
    cat "$work/nginx/stdout" "$work/nginx/error.log" >&2 2>/dev/null || true
    die "nginx did not start"
  }
done
for i in $(seq 50); do # the worker may still be forking, at most 5 s
  ngx_workers=$(ps -o pid= --ppid "$ngx_pid" | xargs)
  [ "$(wc -w <<<"$ngx_workers")" -ge 1 ] && break
  sleep 0.1
done
[ -n "$ngx_workers" ] || die "nginx has no worker"
ngx_pids=$(echo "$ngx_pid $ngx_workers" | tr -s ' ' ',' | sed 's/,$//')

# Both serve the same bytes.
for u in "$ms_url/stream/media/audio.mp3" "$ngx_url/audio.mp3"; do
  curl -sf -m 10 -r 0-65535 "$u" -o "$work/check.bin" || die "GET $u failed"
  cmp -s "$work/check.bin" <(head -c 65536 "$media/audio.mp3") || die "$u differs from the file"
done
sleep 1

# established prints how many connections to a local port are open.
established() {
  ss -Htn state established "( sport = :$1 )" | wc -l
}

# drain waits (at most 30 s) until a server has closed every stream.
drain() {
  local i
  for i in $(seq 300); do
    [ "$(established "$1")" = 0 ] && return 0
    sleep 0.1
  done
  echo "pace-cost.sh: port $1 still has $(established "$1") connections after 30 s" >&2
}

rss_kb() { # summed VmRSS of the pids given
  local t=0 pid
  for pid in "$@"; do
    t=$((t + $(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status")))
  done
  echo "$t"
}

# Idle RSS: after startup and the warm-up requests, before any load.
ms_idle_kb=$(rss_kb "$ms_pid")
curl -s -m 5 "$ms_url/metrics" >"$work/startup.metrics" || true
ngx_idle_kb=$(rss_kb "$ngx_pid" $ngx_workers)
# Loopback receive work that a server's sends cause runs on the sender's
# core, inline (charged to the server) or, when the core is busy, deferred
# to ksoftirqd/0 (charged to nobody's process): measured beside.
ksoftirqd=$(pgrep -x ksoftirqd/0 || true)

# load SERVER LABEL PATH N RATE BURST BUF TRACE: one measured run; the
# client's RESULT line goes to $work/LABEL.result. TRACE: 0, strace (5 s of
# strace -c -f after the window, the streams still going) or perf (8 s of
# perf record -g on the server after the window).
load() {
  local server=$1 label=$2 path=$3 n=$4 rate=$5 burst=$6 buf=$7 trace=$8
  local port pids trace_pid hold=0s
  if [ "$server" = ms ]; then
    port=$ms_port pids=$ms_pid trace_pid=$ms_pid
  else
    port=$ngx_port pids=$ngx_pids trace_pid=${ngx_workers%% *}
  fi
  case $trace in strace) hold=9s ;; perf) hold=12s ;; *) [ "$server" = ms ] && hold=2s ;; esac
  rm -f "$work/$label.ready"
  echo "$label: $n streams of $path ..." >&2
  taskset -c 1 timeout 300 "$work/paceclient" -addr "127.0.0.1:$port" -path "$path" -n "$n" \
    -rate "$rate" -burst "$burst" -window "${window}s" -hold "$hold" -ready "$work/$label.ready" \
    -pids "$pids" -core cpu0 -ksoftirqd "$ksoftirqd" -src "$src_addrs" -buf "$buf" -timeout 150s \
    -label "$label" >"$work/$label.result" 2>"$work/$label.log" &
  cur_pid=$!
  if [ "$trace" != 0 ] || [ "$server" = ms ]; then
    local i
    for i in $(seq 2000); do # 200 s at most
      [ -e "$work/$label.ready" ] && break
      kill -0 "$cur_pid" 2>/dev/null || break
      sleep 0.1
    done
    if [ -e "$work/$label.ready" ] && [ "$server" = ms ]; then
      # What the RSS is made of, at the end of the window.
      curl -s -m 5 "$ms_url/metrics" >"$work/$label.metrics" || true
      ls "/proc/$ms_pid/task" | wc -l >"$work/$label.threads"
    fi
    if [ -e "$work/$label.ready" ] && [ "$trace" != 0 ]; then
      if [ "$trace" = strace ]; then
        timeout -s INT 5 strace -c -f -p "$trace_pid" -o "$work/$label.strace" >/dev/null 2>&1 || true
      else
        timeout 20 perf record -q -F 1000 -g -p "$trace_pid" -o "$work/$label.perf" -- sleep 8 >/dev/null 2>&1 || true
      fi
    fi
  fi
  local rc=0
  wait "$cur_pid" || rc=$?
  cur_pid=""
  cat "$work/$label.log" >&2
  [ "$rc" = 0 ] || die "the client of $label failed (status $rc): $(cat "$work/$label.log")"
  grep -q '^RESULT ' "$work/$label.result" || die "no result from $label"
  # Still up and serving?
  if kill -0 "${pids%%,*}" 2>/dev/null && answers "$server"; then
    echo "up=yes" >>"$work/$label.result"
  else
    echo "up=NO" >>"$work/$label.result"
  fi
  drain "$port"
}

answers() {
  local u
  if [ "$1" = ms ]; then u=$ms_url/stream/media/audio.mp3; else u=$ngx_url/audio.mp3; fi
  [ "$(curl -s -m 10 -r 0-999 -o /dev/null -w '%{http_code}' "$u" || true)" = 206 ]
}

# metric prints a /metrics value of MuStServ.
metric() {
  curl -s -m 5 "$ms_url/metrics" | awk -v k="$1" '$1 == k {print $2}'
}

trace_v=strace trace_a=0
[ "${PERF:-0}" = 1 ] && trace_a=perf
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# The video runs alternate which server goes first, so that slow drift in
# the machine's load (other people's work) falls on both alike.
for i in $(seq "$reps"); do
  t=0
  [ "$i" = 1 ] && t=$trace_v
  if [ $((i % 2)) = 1 ]; then order="ngx ms"; else order="ms ngx"; fi
  for s in $order; do
    if [ "$s" = ms ]; then
      load ms "ms-video-$i" /stream/media/video.ts "$n_video" "$v_paced" "$v_burst" 65536 "$t"
    else
      load ngx "ngx-video-$i" /video.ts "$n_video" "$v_paced" "$v_burst" 65536 "$t"
    fi
  done
done
ms_stalls_v=$(metric mustserv_stream_stalls_total) ms_cut_v=$(metric mustserv_streams_cut_total)
load ngx ngx-audio /audio.mp3 "$n_audio" "$a_paced" "$a_burst" 16384 0
load ms ms-audio /stream/media/audio.mp3 "$n_audio" "$a_paced" "$a_burst" 16384 "$trace_a"
ms_stalls_a=$(metric mustserv_stream_stalls_total) ms_cut_a=$(metric mustserv_streams_cut_total)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
ngx_errors=$(grep -c -e '\[alert\]' -e '\[crit\]' -e '\[error\]' "$work/nginx/error.log" || true)
ms_errors=$(grep -c -e 'level=ERROR' -e 'level=WARN' "$work/mustserv.log" || true)

# --- report --------------------------------------------------------------------
# get LABEL KEY prints a value of a run's RESULT line.
get() {
  tr ' ' '\n' <"$work/$1.result" | awk -F= -v k="$2" '$1 == k {print substr($0, length(k) + 2); exit}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2f", a / b}'; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
le() { awk -v v="$1" -v l="$2" 'BEGIN {print (v <= l) ? "yes" : "NO"}'; }
row() { printf '  %-42s %14s %14s %6s  %-18s %s\n' "$@"; }
fails() { echo $(($(get "$1" fail_dial) + $(get "$1" fail_status) + $(get "$1" fail_eof) + $(get "$1" fail_read))); }
rates() { echo "$(get "$1" rate_min) $(get "$1" rate_p50) $(get "$1" rate_max)" | awk '{printf "%.3f/%.3f/%.3f", $1, $2, $3}'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.5f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# extra KB per stream in a run, against the server's idle RSS at startup
extra() { awk -v a="$(get "$1" rss_t0_kb)" -v b="$(get "$1" rss_t1_kb)" -v i="$2" -v n="$3" 'BEGIN {printf "%.2f", ((a + b) / 2 - i) / n}'; }
# cpu_k LABEL: (server process + ksoftirqd/0) CPU-s per Gbit
cpu_k() { get "$1" cpu_ksoftirqd_s_per_gbit; }
# each SERVER FUNC KEY...: the values of a video metric over the reps
each() {
  local s=$1 f=$2 i out=""
  shift 2
  for i in $(seq "$reps"); do out+=" $($f "$s-video-$i" "$@")"; done
  echo "$out"
}
allfails() {
  local s=$1 i t=0
  for i in $(seq "$reps"); do t=$((t + $(fails "$s-video-$i"))); done
  echo "$t"
}

ms_ver=$("$ms_bin" version 2>/dev/null | sed 's/^mustserv //')
ngx_ver=$("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')
t_end=$(date +%s)

n_rss_l=$(each ngx extra "$ngx_idle_kb" "$n_video") m_rss_l=$(each ms extra "$ms_idle_kb" "$n_video")
n_cpu_l=$(each ngx get cpu_s_per_gbit) m_cpu_l=$(each ms get cpu_s_per_gbit)
n_cpk_l=$(each ngx cpu_k) m_cpk_l=$(each ms cpu_k)
n_core_l=$(each ngx get core_s_per_gbit) m_core_l=$(each ms get core_s_per_gbit)
n_rss=$(median <<<"$n_rss_l") m_rss=$(median <<<"$m_rss_l")
n_cpu=$(median <<<"$n_cpu_l") m_cpu=$(median <<<"$m_cpu_l")
n_cpk=$(median <<<"$n_cpk_l") m_cpk=$(median <<<"$m_cpk_l")
n_core=$(median <<<"$n_core_l") m_core=$(median <<<"$m_core_l")
r_cpu=$(ratio "$m_cpu" "$n_cpu") r_cpk=$(ratio "$m_cpk" "$n_cpk")

echo
echo "pacing cost: MuStServ $ms_ver vs $ngx_ver limit_rate — $(nproc) cores, $(uname -r), loopback"
echo "servers pinned to core 0 (nginx: 1 worker; MuStServ: GOMAXPROCS 1 from the affinity), client to core 1;"
echo "window ${window} s from 2 s after every stream has its burst; ratio = mustserv / nginx"
echo
row "metric" "nginx" "mustserv" "ratio" "target" "met"
echo "$n_video streams of video.ts (peak $(awk -v p="$v_peak" 'BEGIN {printf "%.2f", p / 1e6}') Mbit/s, paced at $v_paced B/s after $v_burst B), median of $reps run(s)"
row "extra RSS per stream (KB)" "$n_rss" "$m_rss" "$(ratio "$m_rss" "$n_rss")" "mustserv <= 20" "$(le "$m_rss" 20)"
row "CPU-s per Gbit, server process" "$n_cpu" "$m_cpu" "$r_cpu" "<= 1.5 x nginx" "$(le "$r_cpu" 1.5)"
row "CPU-s per Gbit, process + ksoftirqd/0" "$n_cpk" "$m_cpk" "$r_cpk" "<= 1.5 x nginx" "$(le "$r_cpk" 1.5)"
row "core 0 busy-s per Gbit (+ others' work)" "$n_core" "$m_core" "$(ratio "$m_core" "$n_core")" "(info)" ""
row "delivered / target, all streams" \
  "$(ratio "$(get ngx-video-1 agg_mbyte_s)" "$(get ngx-video-1 target_agg_mbyte_s)")" \
  "$(ratio "$(get ms-video-1 agg_mbyte_s)" "$(get ms-video-1 target_agg_mbyte_s)")" "" "(run 1)" ""
row "per stream rate/target min/p50/max" "$(rates ngx-video-1)" "$(rates ms-video-1)" "" "(run 1)" ""
row "failed requests, all runs" "$(allfails ngx)" "$(allfails ms)" "" "0" \
  "$([ "$(allfails ngx)" = 0 ] && [ "$(allfails ms)" = 0 ] && echo yes || echo NO)"
row "connect / all past burst (s)" "$(get ngx-video-1 connect_s) / $(get ngx-video-1 burst_s)" \
  "$(get ms-video-1 connect_s) / $(get ms-video-1 burst_s)" "" "(run 1)" ""
echo "$n_audio streams of audio.mp3 (peak $a_peak bit/s, paced at $a_paced B/s after $a_burst B)"
row "connected" "$(get ngx-audio connected)" "$(get ms-audio connected)" "" "$n_audio" \
  "$([ "$(get ms-audio connected)" = "$n_audio" ] && echo yes || echo NO) (nginx $([ "$(get ngx-audio connected)" = "$n_audio" ] && echo yes || echo NO))"
row "failed requests" "$(fails ngx-audio)" "$(fails ms-audio)" "" "0" "$(le "$(fails ms-audio)" 0) (nginx $(le "$(fails ngx-audio)" 0))"
row "server up after the run" "$(get ngx-audio up)" "$(get ms-audio up)" "" "yes" "$(get ms-audio up) (nginx $(get ngx-audio up))"
row "streams outside +-5% of the target" "$(get ngx-audio rate_outside_5pct)" "$(get ms-audio rate_outside_5pct)" "" "0" \
  "$(le "$(get ms-audio rate_outside_5pct)" 0) (nginx $(le "$(get ngx-audio rate_outside_5pct)" 0))"
row "per stream rate/target min/p50/max" "$(rates ngx-audio)" "$(rates ms-audio)" "" "0.95..1.05" ""
row "  p1 / p99" "$(get ngx-audio rate_p1) / $(get ngx-audio rate_p99)" "$(get ms-audio rate_p1) / $(get ms-audio rate_p99)" "" "" ""
n_rss_a=$(get ngx-audio rss_t1_kb) m_rss_a=$(get ms-audio rss_t1_kb)
n_max_a=$(get ngx-audio rss_max_kb) m_max_a=$(get ms-audio rss_max_kb)
row "RSS in the window (MB)" "$(mb "$n_rss_a")" "$(mb "$m_rss_a")" "$(ratio "$m_rss_a" "$n_rss_a")" "<= 300" \
  "$(le "$m_rss_a" 307200) (nginx $(le "$n_rss_a" 307200))"
row "RSS max, sampled every 250 ms (MB)" "$(mb "$n_max_a")" "$(mb "$m_max_a")" "$(ratio "$m_max_a" "$n_max_a")" "<= 300" \
  "$(le "$m_max_a" 307200) (nginx $(le "$n_max_a" 307200))"
n_x=$(extra ngx-audio "$ngx_idle_kb" "$n_audio") m_x=$(extra ms-audio "$ms_idle_kb" "$n_audio")
row "extra RSS per stream (KB)" "$n_x" "$m_x" "$(ratio "$m_x" "$n_x")" "(info)" ""
row "CPU-s per Gbit, server process" "$(get ngx-audio cpu_s_per_gbit)" "$(get ms-audio cpu_s_per_gbit)" \
  "$(ratio "$(get ms-audio cpu_s_per_gbit)" "$(get ngx-audio cpu_s_per_gbit)")" "(info)" ""
row "CPU-s per Gbit, process + ksoftirqd/0" "$(cpu_k ngx-audio)" "$(cpu_k ms-audio)" \
  "$(ratio "$(cpu_k ms-audio)" "$(cpu_k ngx-audio)")" "(info)" ""
row "delivered / target, all streams" \
  "$(ratio "$(get ngx-audio agg_mbyte_s)" "$(get ngx-audio target_agg_mbyte_s)")" \
  "$(ratio "$(get ms-audio agg_mbyte_s)" "$(get ms-audio target_agg_mbyte_s)")" "" "(info)" ""
row "connect / all past burst (s)" "$(get ngx-audio connect_s) / $(get ngx-audio burst_s)" \
  "$(get ms-audio connect_s) / $(get ms-audio burst_s)" "" "" ""
echo
echo "video runs: extra KB/stream nginx [$n_rss_l ] mustserv [$m_rss_l ]; CPU-s/Gbit process nginx [$n_cpu_l ] mustserv [$m_cpu_l ];"
echo "  process + ksoftirqd/0 nginx [$n_cpk_l ] mustserv [$m_cpk_l ]"
# mval LABEL NAME: a value MuStServ's /metrics gave at the end of a window
mval() { awk -v k="$2" '$1 == k {print $2}' "$work/$1.metrics" 2>/dev/null; }
for l in ms-video-1 ms-audio; do
  [ -s "$work/$l.metrics" ] || continue
  echo "mustserv at the end of the $l window: RSS $(mb "$(($(mval "$l" process_resident_memory_bytes) / 1024))") MB," \
    "Go heap in use $(mb "$(($(mval "$l" go_memstats_heap_inuse_bytes) / 1024))") MB" \
    "(idle: $(mb "$(($(mval startup go_memstats_heap_inuse_bytes) / 1024))") MB)," \
    "$(mval "$l" go_goroutines) goroutines, $(cat "$work/$l.threads") threads, $(mval "$l" mustserv_streams_handed) streams in the pacer's loop"
done
echo "idle RSS at startup: nginx $(mb "$ngx_idle_kb") MB (master + worker), mustserv $(mb "$ms_idle_kb") MB; extra RSS = (RSS in the window - idle) / streams"
echo "client CPU-s in the windows (core 1): video nginx $(get ngx-video-1 client_cpu_s), mustserv $(get ms-video-1 client_cpu_s); audio nginx $(get ngx-audio client_cpu_s), mustserv $(get ms-audio client_cpu_s)"
echo "core 0 steal (jiffies, the hypervisor's) in the audio windows: nginx $(get ngx-audio core_steal), mustserv $(get ms-audio core_steal)"
echo "mustserv pacer after video / audio: stalls $ms_stalls_v / $ms_stalls_a, cut $ms_cut_v / $ms_cut_a; warnings+errors in its log: $ms_errors; nginx error.log alerts/errors: $ngx_errors"
for l in $(for i in $(seq "$reps"); do echo "ngx-video-$i ms-video-$i"; done) ngx-audio ms-audio; do
  e=$(get "$l" first_error)
  [ "$e" = '""' ] || echo "$l first failure: $e"
done
echo "load average before/after: $load_before / $load_after"
echo "run time: $((t_end - t_begin)) s"
for l in ms-video-1 ngx-video-1; do
  if [ -s "$work/$l.strace" ]; then
    echo
    echo "strace -c -f -p <${l%%-*} server pid>, 5 s while the $n_video streams go on (after the window):"
    head -n 12 "$work/$l.strace"
  fi
done
if [ -s "$work/ms-audio.perf" ]; then
  echo
  echo "perf record -g on mustserv, 8 s while the $n_audio streams go on (after the window), by symbol:"
  perf report -i "$work/ms-audio.perf" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 15
  echo "... including callees:"
  perf report -i "$work/ms-audio.perf" --children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' |
    grep -E 'do_sendfile|sock_def_readable|runtime\.sysmon|runtime\.schedule|runtime\.findRunnable|pace\.\(\*loop\)\.run|container/heap|pace\.\(\*Pacer\)\.(plan|account)|epoll' | head -n 12
fi
