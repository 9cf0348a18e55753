#!/usr/bin/env bash
# bench/compare.sh — MuStServ and nginx side by side on this machine.
#
# Starts both servers on free loopback ports, serving the same temporary
# folder (a 1 GiB file of real random bytes and a 4 KiB file), and prints,
# for each server: idle RSS, single-client throughput of the 1 GiB file and
# requests/s for the 4 KiB file, the ratio mustserv/nginx and whether the
# project's targets hold (docs/benchmarks.md).
#
# usage: bash bench/compare.sh [--quick]      (or: make bench)
#   --quick   1 run of each measurement and 3 s wrk runs instead of medians
#             of 3 with 10 s wrk runs: for checking that the script works.
#
# Environment: MUSTSERV_BIN=path skips the build and runs that binary;
# CGO_ENABLED (0, as make build) for the build; NGINX=path picks another
# nginx (default /usr/sbin/nginx); REPS (3) runs each measurement more
# often; WRK_CONNS (32) and WRK_THREADS (1) change the small-file load;
# NGINX_LOG_BUFFER=1 gives nginx's access log a buffer as MuStServ's has.
set -euo pipefail

quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    -h | --help)
      sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "compare.sh: unknown argument $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

if [ "$quick" = 1 ]; then
  reps=1 wrk_dur=3s warm_dur=1s
else
  reps=3 wrk_dur=10s warm_dur=2s
fi
reps=${REPS:-$reps}
case $reps in
  [1-9] | [1-9][0-9]) ;;
  *) echo "compare.sh: REPS must be 1..99" >&2; exit 2 ;;
esac
wrk_conns=${WRK_CONNS:-32}
wrk_threads=${WRK_THREADS:-1}
nginx_bin=${NGINX:-/usr/sbin/nginx}
ngx_log_buffer=""
if [ "${NGINX_LOG_BUFFER:-0}" = 1 ]; then
  ngx_log_buffer=" buffer=64k flush=100ms"
fi

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3

for tool in curl wrk ss "$nginx_bin"; do
  command -v "$tool" >/dev/null || {
    echo "compare.sh: $tool not found (apt-get install curl wrk iproute2 nginx)" >&2
    exit 1
  }
done

# --- cleanup: every process this script starts is recorded here ---------
work=""
ms_pid="" ngx_pid="" cur_pid=""
cleanup() {
  local rc=$? pid i
  trap - EXIT INT TERM
  for pid in $cur_pid $ms_pid $ngx_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $cur_pid $ms_pid $ngx_pid; do
    for i in $(seq 50); do # at most 5 s each
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # nginx workers exit with their master; catch any left behind by a KILL.
  for pid in ${ngx_workers:-}; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "$work" ]; then
    rm -rf "$work"
  fi
  exit "$rc"
}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh" # traps (cleanup above), run, die



work=$(mktemp -d "${TMPDIR:-/tmp}/mustserv-bench.XXXXXX")
# nginx's workers run as an unprivileged user: they must be able to read it.
chmod 755 "$work"

# --- build -----------------------------------------------------------------
# As `make build` does (CGO_ENABLED=0: one static binary). The binary runs
# from a copy, so that someone else's build of bin/mustserv during the run
# cannot change what is measured.
if [ -n "${MUSTSERV_BIN:-}" ]; then
  cp "$MUSTSERV_BIN" "$work/mustserv"
else
  echo "building bin/mustserv ..." >&2
  run env CGO_ENABLED="${CGO_ENABLED:-0}" go build -trimpath -ldflags='-s -w' -o bin/mustserv ./cmd/mustserv
  cp bin/mustserv "$work/mustserv"
fi
ms_bin=$work/mustserv
# A dynamically linked binary names its loader in the ELF header's interp.
if [ "$(head -c 4096 "$ms_bin" | grep -ac 'ld-linux' || true)" != 0 ]; then
  linkage=dynamic
else
  linkage=static
fi

# --- the served folder -----------------------------------------------------
media=$work/media
mkdir -p "$media" "$work/nginx" "$work/data"
chmod 755 "$media"
echo "writing a 1 GiB file of random bytes ..." >&2
# Real bytes, not a sparse file: reading holes costs the kernel nothing.
run head -c 1073741824 /dev/urandom >"$media/big.bin"
run head -c 4096 /dev/urandom >"$media/small.bin"
chmod 644 "$media/big.bin" "$media/small.bin"
[ "$(stat -c %s "$media/big.bin")" = 1073741824 ] || die "big.bin has the wrong size"
[ "$(stat -c %b "$media/big.bin")" -ge $((1073741824 / 512)) ] || die "big.bin is sparse"
# Both servers then read it from the page cache.
run cat "$media/big.bin" >/dev/null



# --- MuStServ --------------------------------------------------------------
ms_port=$(free_port)
ms_base=http://127.0.0.1:$ms_port/stream/media
# The access log goes to a file, as nginx's does; stdout only says "serving".
"$ms_bin" serve --listen "127.0.0.1:$ms_port" --data "$work/data" "$media" \
  >"$work/mustserv.out" 2>"$work/mustserv.log" &
ms_pid=$!
wait_http "$ms_base/small.bin" "$ms_pid" || {
  cat "$work/mustserv.log" >&2
  die "mustserv did not start"
}

# --- nginx -----------------------------------------------------------------
ngx_port=$(free_port "$ms_port")
ngx_base=http://127.0.0.1:$ngx_port
mkdir -p "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<EOF
# Generated by bench/compare.sh. Debian's defaults where not said otherwise;
# worker_processes 2 is what "auto" gives on this 2-core machine.
daemon off;
master_process on;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;

events {
    worker_connections 1024;
}

http {
    default_type application/octet-stream;
    # One line per request, as MuStServ's access log writes (MuStServ
    # batches its lines, 100 ms or 64 KiB; NGINX_LOG_BUFFER=1 makes nginx
    # do the same).
    access_log $work/nginx/access.log combined$ngx_log_buffer;
    sendfile on;
    tcp_nopush on;
    # keepalive_timeout and keepalive_requests keep their defaults.

    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;

    server {
        listen 127.0.0.1:$ngx_port;
        root $media;
    }
}
EOF
"$nginx_bin" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" \
  >"$work/nginx/stdout" 2>&1 &
ngx_pid=$!
wait_http "$ngx_base/small.bin" "$ngx_pid" || {
  cat "$work/nginx/stdout" "$work/nginx/error.log" >&2 2>/dev/null || true
  die "nginx did not start"
}
ngx_workers=""
for i in $(seq 50); do # workers may still be forking: wait for 2, at most 5 s
  ngx_workers=$(ps -o pid= --ppid "$ngx_pid" | tr -s ' \n' ' ')
  [ "$(wc -w <<<"$ngx_workers")" -ge 2 ] && break
  sleep 0.1
done

# --- sanity: both serve the same bytes ---------------------------------------
for base in "$ms_base" "$ngx_base"; do
  curl -sf -m 10 "$base/small.bin" -o "$work/check.bin" || die "GET $base/small.bin failed"
  cmp -s "$work/check.bin" "$media/small.bin" || die "$base/small.bin differs from the file"
done

# --- idle RSS ----------------------------------------------------------------
# After startup and the request above (one warm-up request each). VmRSS in
# kB, summed for nginx over the master and every worker; PSS is printed too
# because nginx's workers share pages with their master, which the RSS sum
# counts once per process.
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
pss_kb() { awk '$1 == "Pss:" {print $2}' "/proc/$1/smaps_rollup"; }
sleep 1
ms_rss=$(status_kb "$ms_pid" VmRSS)
ms_pss=$(pss_kb "$ms_pid")
ngx_rss=0 ngx_pss=0
for pid in $ngx_pid $ngx_workers; do
  ngx_rss=$((ngx_rss + $(status_kb "$pid" VmRSS)))
  ngx_pss=$((ngx_pss + $(pss_kb "$pid")))
done

# --- measurements ------------------------------------------------------------
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# throughput sets val to the download speed of the 1 GiB file in GB/s
# (10^9 bytes/s). Results go through variables and files, not $(...), so
# that every process runs under run and cleanup can reach it.
throughput() {
  run curl -s -m 300 -o /dev/null -w '%{http_code} %{size_download} %{speed_download}\n' \
    "$1/big.bin" >"$work/curl.out" || die "curl $1/big.bin failed"
  local code size speed
  read -r code size speed <"$work/curl.out"
  [ "$code" = 200 ] && [ "$size" = 1073741824 ] || die "GET $1/big.bin: status $code, $size bytes"
  val=$(awk -v s="$speed" 'BEGIN {printf "%.3f", s / 1e9}')
}

# cpu_ticks prints the CPU time (user + system, in clock ticks) used so far
# by the given processes.
cpu_ticks() {
  local t=0 pid
  for pid in "$@"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)

# reqs sets val to wrk's requests/s for the 4 KiB file and cpu to the
# server's CPU time per request in µs (pids after the URL); errors are fatal.
reqs() {
  local url=$1/small.bin dur=$2 c0 c1 n
  shift 2
  c0=$(cpu_ticks "$@")
  run wrk -t"$wrk_threads" -c"$wrk_conns" -d"$dur" "$url" >"$work/wrk.out" 2>&1 ||
    die "wrk failed: $(cat "$work/wrk.out")"
  c1=$(cpu_ticks "$@")
  if grep -q -e 'Non-2xx' -e 'Socket errors' "$work/wrk.out"; then
    die "wrk saw errors against $url: $(cat "$work/wrk.out")"
  fi
  val=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$work/wrk.out")
  n=$(awk '/ requests in / {print $1}' "$work/wrk.out")
  [ -n "$val" ] && [ -n "$n" ] || die "no Requests/sec in wrk's output: $(cat "$work/wrk.out")"
  cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$n" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "warming up ..." >&2
val=""
for base in "$ms_base" "$ngx_base"; do
  throughput "$base"
  if [ "$base" = "$ms_base" ]; then
    reqs "$base" "$warm_dur" "$ms_pid"
  else
    reqs "$base" "$warm_dur" $ngx_pid $ngx_workers
  fi
done

ms_tp="" ngx_tp="" ms_rps="" ngx_rps="" ms_cpu="" ngx_cpu=""
for i in $(seq "$reps"); do
  # Alternate which server goes first, so slow drift in the machine's load
  # (other people's tests) falls on both alike.
  if [ $((i % 2)) = 1 ]; then order="ms ngx"; else order="ngx ms"; fi
  for s in $order; do
    if [ "$s" = ms ]; then
      throughput "$ms_base"; ms_tp+=" $val"; echo "run $i: mustserv 1 GiB $val GB/s" >&2
    else
      throughput "$ngx_base"; ngx_tp+=" $val"; echo "run $i: nginx    1 GiB $val GB/s" >&2
    fi
  done
  for s in $order; do
    if [ "$s" = ms ]; then
      reqs "$ms_base" "$wrk_dur" "$ms_pid"
      ms_rps+=" $val" ms_cpu+=" $cpu"
      echo "run $i: mustserv 4 KiB $val req/s, $cpu µs CPU/request" >&2
    else
      reqs "$ngx_base" "$wrk_dur" $ngx_pid $ngx_workers
      ngx_rps+=" $val" ngx_cpu+=" $cpu"
      echo "run $i: nginx    4 KiB $val req/s, $cpu µs CPU/request" >&2
    fi
  done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Peak RSS over the whole run (VmHWM), the 32-connection request load
# included; for nginx summed over its processes as for idle RSS.
ms_hwm=$(status_kb "$ms_pid" VmHWM)
ngx_hwm=0
for pid in $ngx_pid $ngx_workers; do
  ngx_hwm=$((ngx_hwm + $(status_kb "$pid" VmHWM)))
done

# Every request must have been logged by both (the comparison assumes it).
ms_lines=$(grep -c 'msg=request' "$work/mustserv.log" || true)
ngx_lines=$(wc -l <"$work/nginx/access.log")

# --- report --------------------------------------------------------------------
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { # verdict VALUE OP LIMIT
  awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
    ok = (op == "<") ? (v < l) : (v >= l); print (ok ? "yes" : "NO") }'
}

ms_tp_med=$(median <<<"$ms_tp")
ngx_tp_med=$(median <<<"$ngx_tp")
ms_rps_med=$(median <<<"$ms_rps")
ngx_rps_med=$(median <<<"$ngx_rps")
r_rss=$(ratio "$ms_rss" "$ngx_rss")
r_tp=$(ratio "$ms_tp_med" "$ngx_tp_med")
r_rps=$(ratio "$ms_rps_med" "$ngx_rps_med")

if [ "$quick" = 1 ]; then what="1 run each (--quick)"; else what="median of $reps"; fi
echo
echo "MuStServ $("$ms_bin" version 2>/dev/null | sed 's/^mustserv //') ($linkage, $(($(stat -c %s "$ms_bin") / 1024)) KiB) vs $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
echo "$(nproc) cores, $(uname -r), loopback; $what; wrk -t$wrk_threads -c$wrk_conns -d$wrk_dur"
echo
printf '%-28s %12s %12s %8s  %-22s %s\n' metric mustserv nginx ratio target met
printf '%-28s %12s %12s %8s  %-22s %s\n' "idle RSS (MB)" "$(mb "$ms_rss")" "$(mb "$ngx_rss")" \
  "$r_rss" "mustserv < nginx" "$(verdict "$ms_rss" "<" "$ngx_rss")"
printf '%-28s %12s %12s %8s  %-22s %s\n' "1 GiB, 1 client (GB/s)" "$ms_tp_med" "$ngx_tp_med" \
  "$r_tp" ">= 0.9 x nginx" "$(verdict "$r_tp" ">=" 0.9)"
printf '%-28s %12s %12s %8s  %-22s %s\n' "4 KiB file (requests/s)" "$ms_rps_med" "$ngx_rps_med" \
  "$r_rps" ">= 0.5 x nginx" "$(verdict "$r_rps" ">=" 0.5)"
echo
echo "runs: throughput mustserv [$ms_tp ] nginx [$ngx_tp ]; req/s mustserv [$ms_rps ] nginx [$ngx_rps ]"
echo "server CPU per 4 KiB request (µs, user+system, $what): mustserv $(median <<<"$ms_cpu"), nginx $(median <<<"$ngx_cpu")"
echo "idle PSS (MB): mustserv $(mb "$ms_pss"), nginx $(mb "$ngx_pss") (master + $(wc -w <<<"$ngx_workers") workers)"
echo "peak RSS over the runs (MB, VmHWM): mustserv $(mb "$ms_hwm") (GOGC ${GOGC:-unset, so 200}), nginx $(mb "$ngx_hwm")"
echo "access logs on for both (one line per request, written to a file; mustserv batched, nginx ${ngx_log_buffer:- unbuffered}): mustserv $ms_lines lines, nginx $ngx_lines lines"
echo "nginx: worker_processes 2, sendfile on, tcp_nopush on, keepalive defaults; mustserv: GOMAXPROCS default ($(nproc))"
echo "wrk, curl and the server share the same $(nproc) cores, unpinned, the same way for both servers"
echo "load average before/after the runs: $load_before / $load_after (other work on the machine adds noise)"
