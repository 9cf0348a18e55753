#!/usr/bin/env bash
# bench/pace-share.sh — the two pacing figures of issue 4, MuStServ next to
# nginx in the same run.
#
#   A. waste: PLAYERS_A (100) greedy players, joining JOIN_A (50ms) apart,
#      each watch WATCH_A (30s) of a 10-minute ~5 Mbit/s H.264 MP4 and
#      leave. Bytes the players received from mustserv (pacing defaults, no
#      budget) vs from nginx, on the loopback; target: mustserv <= 15% of
#      nginx. Cross-checked with mustserv's /metrics
#      (mustserv_stream_sent_bytes_total) and both access logs.
#   B. sharing: the servers run in a network namespace (NETNS, 10.77.0.2)
#      behind a veth whose egress, their uplink, tc tbf limits to
#      UPLINK_MBIT (200) Mbit/s; PLAYERS_B (55) greedy players in the root
#      namespace (10.77.0.1) join JOIN_B (1s) apart and watch WATCH_B (60s)
#      each. mustserv with [pace] uplink = BUDGET (190Mbit) vs nginx (no
#      budget); target: mustserv >= 35 players ok and stall-free, the rest
#      refused with 503. tbf counts whole frames: a budget of payload
#      bytes fills about 1.05 x as much of the link.
#
# Players consume the video at its average bitrate; mustserv paces at its
# peak (both from `mustserv probe`). Each server's phase runs alone, one
# after the other, each capped by mustload's -timeout (last start + watch
# + 60 s); a full run takes about 6 minutes. Prints a results table; the
# players' JSON reports, the mustload commands, the servers' logs, /metrics
# and 2-second samples (tbf counters, active streams) stay in a temporary
# folder whose path it prints. The namespace and the veth are removed at
# exit, on errors and on TERM/INT as well.
#
# usage: bash bench/pace-share.sh [--quick] [--only waste|share]
#   --quick   fewer, shorter players (A: 20 x 10s; B: 42 joining 250ms apart,
#             20s each): checks that the script works, not the figures
#   --only X  run one figure only
#
# Needs root (network namespace, tc), ffmpeg with libx264, curl, jq, ss, ip,
# tc, nginx. Environment: MUSTSERV_BIN, MUSTLOAD_BIN (skip the builds),
# NGINX (/usr/sbin/nginx), PACE_CACHE (/var/tmp/mustserv-bench-cache: the
# generated video, reused), PLAYERS_A, JOIN_A, WATCH_A, PLAYERS_B, JOIN_B,
# WATCH_B, UPLINK_MBIT, BUDGET, TBF_BURST (256kb), TBF_LATENCY (50ms),
# NETNS (mssrv), B_SERVERS ("mustserv nginx": B's phases to run).
set -euo pipefail

quick=0 only=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --only)
      [ $# -ge 2 ] || { echo "pace-share.sh: --only needs waste or share" >&2; exit 2; }
      only=$2
      shift
      ;;
    --only=*) only=${1#--only=} ;;
    -h | --help)
      awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"
      exit 0
      ;;
    *)
      echo "pace-share.sh: unknown argument $1 (try --help)" >&2
      exit 2
      ;;
  esac
  shift
done
case $only in
  "" | waste | share) ;;
  *) echo "pace-share.sh: --only takes waste or share, not $only" >&2; exit 2 ;;
esac
do_a=1 do_b=1
[ "$only" = share ] && do_a=0
[ "$only" = waste ] && do_b=0

if [ "$quick" = 1 ]; then
  d_pa=20 d_ja=50ms d_wa=10s d_pb=42 d_jb=250ms d_wb=20s
else
  d_pa=100 d_ja=50ms d_wa=30s d_pb=55 d_jb=1s d_wb=60s
fi
players_a=${PLAYERS_A:-$d_pa} join_a=${JOIN_A:-$d_ja} watch_a=${WATCH_A:-$d_wa}
players_b=${PLAYERS_B:-$d_pb} join_b=${JOIN_B:-$d_jb} watch_b=${WATCH_B:-$d_wb}
uplink_mbit=${UPLINK_MBIT:-200}
budget=${BUDGET:-190Mbit}
tbf_burst=${TBF_BURST:-256kb}
tbf_latency=${TBF_LATENCY:-50ms}
netns=${NETNS:-mssrv}
b_servers=${B_SERVERS:-mustserv nginx}
b_ms=0 b_ngx=0
for x in $b_servers; do
  case $x in
    mustserv) b_ms=1 ;;
    nginx) b_ngx=1 ;;
    *) echo "pace-share.sh: B_SERVERS takes mustserv and/or nginx, not $x" >&2; exit 2 ;;
  esac
done
nginx_bin=${NGINX:-/usr/sbin/nginx}
cache=${PACE_CACHE:-/var/tmp/mustserv-bench-cache}
for v in "$players_a" "$players_b" "$uplink_mbit"; do
  case $v in
    [1-9] | [1-9][0-9] | [1-9][0-9][0-9] | [1-9][0-9][0-9][0-9]) ;;
    *) echo "pace-share.sh: PLAYERS_A, PLAYERS_B, UPLINK_MBIT must be 1..9999" >&2; exit 2 ;;
  esac
done

# secs converts a Go duration of the forms mustload takes here (500ms, 1s,
# 1.5s, 2m) to seconds.
secs() {
  awk -v d="$1" 'BEGIN {
    if (d ~ /^[0-9.]+ms$/) { sub(/ms$/, "", d); print d / 1000; exit }
    if (d ~ /^[0-9.]+s$/) { sub(/s$/, "", d); print d + 0; exit }
    if (d ~ /^[0-9.]+m$/) { sub(/m$/, "", d); print d * 60; exit }
    print "bad"; exit }'
}
for d in "$join_a" "$watch_a" "$join_b" "$watch_b"; do
  [ "$(secs "$d")" != bad ] || { echo "pace-share.sh: bad duration $d (use e.g. 500ms, 30s, 2m)" >&2; exit 2; }
done

# Paths given relative to where the script was started from.
[ -z "${MUSTSERV_BIN:-}" ] || MUSTSERV_BIN=$(realpath "$MUSTSERV_BIN")
[ -z "${MUSTLOAD_BIN:-}" ] || MUSTLOAD_BIN=$(realpath "$MUSTLOAD_BIN")
cache=$(realpath -m "$cache")
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3

for tool in curl jq ss ip tc ffmpeg "$nginx_bin"; do
  command -v "$tool" >/dev/null || {
    echo "pace-share.sh: $tool not found (apt-get install curl jq iproute2 ffmpeg nginx)" >&2
    exit 1
  }
done
if [ "$do_b" = 1 ] && [ "$(id -u)" != 0 ]; then
  echo "pace-share.sh: figure B needs root (ip netns, tc); run as root or with --only waste" >&2
  exit 1
fi

# --- cleanup: every process, the namespace and the veth ------------------
# fd 3 is the script's stderr: a trap runs with the redirections of the
# command it interrupts (run ... 2>FILE), and cleanup's words must not go
# to that file.
exec 3>&2
res=""
pids=""     # servers and samplers, by PID
cur_pid=""  # the foreground command under run
ns_made=0
ngx_workers=""
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  stop_pids $cur_pid $pids
  for pid in $ngx_workers; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$ns_made" = 1 ]; then
    # Deleting one end of a veth deletes both; the namespace after it.
    ip link del "$veth_root" 2>/dev/null || true
    ip netns del "$netns" 2>/dev/null || true
  fi
  rm -f "${res:-/nonexistent}/mustserv" "${res:-/nonexistent}/mustload"
  if [ -n "$res" ] && [ "$rc" != 0 ]; then
    echo "pace-share.sh: failed (exit $rc); logs and reports kept in $res" >&3
  fi
  exit "$rc"
}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh" # traps (cleanup above), run, die

forget() { # forget PID: drop it from pids once stopped
  local p out=""
  for p in $pids; do [ "$p" = "$1" ] || out+=" $p"; done
  pids=$out
}
log() { echo "[$(date +%T)] $*" >&2; }

res=$(mktemp -d "${TMPDIR:-/tmp}/mustserv-pace-share.XXXXXX")
chmod 755 "$res"
log "results, logs and JSON reports go to $res"
t_start=$SECONDS

# --- binaries ----------------------------------------------------------------
# Built into the results folder (removed at exit), not into bin/, so that
# someone else's build during the run cannot change what is measured.
# Other people edit the tree: say what was built.
if [ -n "${MUSTSERV_BIN:-}" ]; then
  cp "$MUSTSERV_BIN" "$res/mustserv"
  built="mustserv from $MUSTSERV_BIN"
else
  built="mustserv built from the working tree at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  dirty=$(git status --porcelain -- '*.go' go.mod go.sum 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
  [ -z "$dirty" ] || built+=", uncommitted changes in: $dirty"
  log "building mustserv (as make build) ..."
  run env CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$res/mustserv" ./cmd/mustserv
fi
if [ -n "${MUSTLOAD_BIN:-}" ]; then
  cp "$MUSTLOAD_BIN" "$res/mustload"
else
  log "building mustload ..."
  run go build -o "$res/mustload" ./cmd/mustload
fi
ms_bin=$res/mustserv ml_bin=$res/mustload
ms_version=$("$ms_bin" version 2>/dev/null | sed 's/^mustserv //')

# --- the video -------------------------------------------------------------------
# 30 s of 1280x720 30 fps test pattern with noise (so that x264 needs the
# bitrate it is given) at 4500 kbit/s capped by VBV, AAC 128 kbit/s, looped
# 20 times without re-encoding: 10 min, ~4.8 Mbit/s average, peak (4 s)
# just under 5 Mbit/s, moov first. Made once into $cache, and reused.
media=$cache/media
video_name=pace5m.mp4
video=$media/$video_name
mkdir -p "$media"
chmod 755 "$cache" "$media" # nginx's workers read it as another user
if ! [ -s "$video" ] || ! "$ms_bin" probe "$video" >/dev/null 2>&1; then
  log "encoding the 10-minute video into $video (once; about 10 s) ..."
  tmpv=$(mktemp -d "$cache/make.XXXXXX")
  run ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t+u" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 30 \
    -c:v libx264 -preset ultrafast -b:v 4500k -maxrate 4500k -bufsize 4500k -g 60 -pix_fmt yuv420p \
    -c:a aac -b:a 128k -movflags +faststart "$tmpv/seg.mp4" || die "ffmpeg (segment) failed"
  run ffmpeg -nostdin -hide_banner -loglevel error -y -stream_loop 19 -i "$tmpv/seg.mp4" \
    -c copy -movflags +faststart "$tmpv/$video_name" || die "ffmpeg (loop) failed"
  chmod 644 "$tmpv/$video_name"
  mv "$tmpv/$video_name" "$video" # atomic: a parallel run sees all or nothing
  rm -rf "$tmpv"
fi
"$ms_bin" probe --json "$video" >"$res/probe.json" || die "mustserv probe $video failed"
size=$(stat -c %s "$video")
dur=$(jq -r .duration_seconds "$res/probe.json")
avg=$(jq -r .bitrate_avg_bps "$res/probe.json")
# pace_bps: the peak scaled to the file's bytes, what the server paces by.
peak=$(jq -r .pace_bps "$res/probe.json")
[ "$avg" -gt 0 ] && [ "$peak" -gt 0 ] || die "probe found no bitrate: $(cat "$res/probe.json")"
# The players consume the file's bytes at its average rate on the wire
# (container included); the server paces at its peak.
avg=$(awk -v s="$size" -v d="$dur" 'BEGIN {printf "%d", s * 8 / d}')
bitrate=$avg
mbit() { awk -v b="$1" 'BEGIN {printf "%.2f", b / 1e6}'; }
mb() { awk -v b="$1" 'BEGIN {if (b == "-") print "-"; else printf "%.1f", b / 1e6}'; }
log "video: $(mb "$size") MB, $(printf '%.0f' "$dur") s, average $(mbit "$avg") Mbit/s, peak $(mbit "$peak") Mbit/s (mustserv probe)"
# Both servers serve it from the page cache.
run cat "$video" >/dev/null

# --- helpers ---------------------------------------------------------------------

# same_bytes URL: the first MiB served equals the file's.
same_bytes() {
  curl -sf -m 20 -r 0-1048575 "$1" -o "$res/check.bin" || die "GET $1 (first MiB) failed"
  head -c 1048576 "$video" | cmp -s - "$res/check.bin" || die "$1 serves other bytes than $video"
  rm -f "$res/check.bin"
}

# metric BASE NAME prints a /metrics value as an integer.
metric() {
  curl -s -m 5 "$1/metrics" | awk -v k="$2" '$1 == k {printf "%.0f\n", $2; found = 1} END {if (!found) print "NA"}'
}

# wait_streams BASE: until mustserv has no active stream (at most 15 s).
wait_streams() {
  local i
  for i in $(seq 150); do
    [ "$(metric "$1" mustserv_streams_active)" = 0 ] && return 0
    sleep 0.1
  done
  log "warning: mustserv still had $(metric "$1" mustserv_streams_active) active streams 15 s after the players ended"
}

# start_mustserv NAME ADDR CONFIG [netns prefix...]: sets ms_pid.
start_mustserv() {
  local name=$1 addr=$2 conf=$3
  shift 3
  mkdir -p "$res/$name-data"
  "$@" "$ms_bin" serve --no-auth --config "$conf" --listen "$addr" --data "$res/$name-data" "$media" \
    >"$res/$name-mustserv.out" 2>"$res/$name-mustserv.log" &
  ms_pid=$!
  pids+=" $ms_pid"
  wait_http "http://$addr/healthz" "$ms_pid" || {
    cat "$res/$name-mustserv.log" >&2
    die "mustserv ($name) did not start"
  }
}

# start_nginx NAME ADDR [netns prefix...]: sets ngx_pid and ngx_workers.
start_nginx() {
  local name=$1 addr=$2 dir i
  dir=$res/$name-nginx
  shift 2
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
# Generated by bench/pace-share.sh, as bench/compare.sh's: Debian's
# defaults where not said otherwise; worker_processes 2 = auto here.
daemon off;
master_process on;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 1024;
}
http {
    default_type application/octet-stream;
    types { video/mp4 mp4; }
    access_log $dir/access.log combined;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen $addr;
        root $media;
    }
}
EOF
  "$@" "$nginx_bin" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout" 2>&1 &
  ngx_pid=$!
  pids+=" $ngx_pid"
  wait_http "http://$addr/$video_name" "$ngx_pid" || {
    cat "$dir/stdout" "$dir/error.log" >&2 2>/dev/null || true
    die "nginx ($name) did not start"
  }
  ngx_workers=""
  for i in $(seq 50); do
    ngx_workers=$(ps -o pid= --ppid "$ngx_pid" | tr -s ' \n' ' ')
    [ "$(wc -w <<<"$ngx_workers")" -ge 2 ] && break
    sleep 0.1
  done
}
stop_nginx() {
  stop_pids "$ngx_pid"
  forget "$ngx_pid"
  for w in $ngx_workers; do kill -KILL "$w" 2>/dev/null || true; done
  ngx_workers="" ngx_pid=""
}
stop_mustserv() {
  stop_pids "$ms_pid"
  forget "$ms_pid"
  ms_pid=""
}

# players NAME URL PLAYERS JOIN WATCH: runs mustload (capped), JSON to
# $res/NAME.json, its one-line summary to $res/NAME.stderr.
players() {
  local name=$1 url=$2 n=$3 join=$4 watch=$5 cap
  # Last start + watch + 60 s for startup, stalls and slow ends.
  cap=$(awk -v n="$n" -v j="$(secs "$join")" -v w="$(secs "$watch")" 'BEGIN {printf "%ds", (n - 1) * j + w + 60}')
  echo "$ml_bin -url '$url@$bitrate' -players $n -join $join -watch $watch -timeout $cap -out $res/$name.json" \
    >"$res/$name.cmd"
  log "$name: $n players, $join apart, $watch each (cap $cap) against $url"
  run "$ml_bin" -url "$url@$bitrate" -players "$n" -join "$join" -watch "$watch" -timeout "$cap" \
    -out "$res/$name.json" 2>"$res/$name.stderr" || die "mustload failed: $(cat "$res/$name.stderr")"
  log "$name: $(tail -n 1 "$res/$name.stderr")"
}

# q NAME JQ: a figure from a report.
q() {
  if [ -f "$res/$1.json" ]; then jq -r "$2" "$res/$1.json"; else echo -; fi
}

# access-log byte sums (body bytes the servers say they sent)
ms_log_bytes() { awk '/msg=request/ && / path=\/stream\// {for (i = 1; i <= NF; i++) if ($i ~ /^bytes=/) s += substr($i, 7)} END {printf "%.0f\n", s}' "$1"; }
ngx_log_bytes() { awk '$7 ~ /\.mp4$/ {s += $10} END {printf "%.0f\n", s}' "$1"; }

# conf NAME UPLINK: a mustserv config, pacing defaults but the budget.
conf() {
  cat >"$res/$1.toml" <<EOF
# Generated by bench/pace-share.sh: every other key at its default.
[pace]
uplink = "$2"
EOF
  "$ms_bin" config check "$res/$1.toml" >/dev/null || die "config $res/$1.toml is invalid"
}

# ================= A. waste =========================================================
if [ "$do_a" = 1 ]; then
  log "A. waste: mustserv (pacing defaults, no budget) on the loopback"
  conf A 0
  port=$(free_port)
  start_mustserv A "127.0.0.1:$port" "$res/A.toml"
  base=http://127.0.0.1:$port
  same_bytes "$base/stream/media/$video_name"
  wait_streams "$base"
  sleep 0.3 # the access log is written in batches of 100 ms
  a_sent0=$(metric "$base" mustserv_stream_sent_bytes_total)
  a_burst0=$(metric "$base" mustserv_stream_burst_bytes_total)
  ms_log_before=$(ms_log_bytes "$res/A-mustserv.log")
  players A-mustserv "$base/stream/media/$video_name" "$players_a" "$join_a" "$watch_a"
  wait_streams "$base"
  a_sent=$(($(metric "$base" mustserv_stream_sent_bytes_total) - a_sent0))
  a_burst=$(($(metric "$base" mustserv_stream_burst_bytes_total) - a_burst0))
  curl -s -m 5 "$base/metrics" >"$res/A-mustserv.metrics"
  stop_mustserv # flushes its access log
  a_ms_log=$(($(ms_log_bytes "$res/A-mustserv.log") - ms_log_before))

  log "A. waste: nginx (unthrottled) on the loopback"
  port=$(free_port)
  start_nginx A "127.0.0.1:$port"
  base=http://127.0.0.1:$port
  same_bytes "$base/$video_name"
  ngx_log_before=$(ngx_log_bytes "$res/A-nginx/access.log")
  players A-nginx "$base/$video_name" "$players_a" "$join_a" "$watch_a"
  stop_nginx
  a_ngx_log=$(($(ngx_log_bytes "$res/A-nginx/access.log") - ngx_log_before))
fi

# ================= B. sharing =======================================================
if [ "$do_b" = 1 ]; then
  veth_root=${netns}0 veth_ns=${netns}1
  ip netns list | grep -qw "^$netns" && die "network namespace $netns exists already (another run? if not: ip netns del $netns)"
  ip link show "$veth_root" >/dev/null 2>&1 && die "link $veth_root exists already (another run? if not: ip link del $veth_root)"
  ns_made=1
  ip netns add "$netns"
  ip link add "$veth_root" type veth peer name "$veth_ns"
  ip link set "$veth_ns" netns "$netns"
  ip addr add 10.77.0.1/24 dev "$veth_root"
  ip link set "$veth_root" up
  nsx=(ip netns exec "$netns")
  "${nsx[@]}" ip addr add 10.77.0.2/24 dev "$veth_ns"
  "${nsx[@]}" ip link set "$veth_ns" up
  "${nsx[@]}" ip link set lo up
  # The server's uplink: its egress towards the players.
  "${nsx[@]}" tc qdisc add dev "$veth_ns" root tbf rate "${uplink_mbit}mbit" burst "$tbf_burst" latency "$tbf_latency"
  tbf_desc=$("${nsx[@]}" tc qdisc show dev "$veth_ns" | head -n 1)
  ns_cc=$("${nsx[@]}" sysctl -n net.ipv4.tcp_congestion_control)
  log "B. namespace $netns: $tbf_desc; congestion control $ns_cc"

  # tbf_stats: "sent_bytes packets dropped overlimits"
  tbf_stats() {
    "${nsx[@]}" tc -s qdisc show dev "$veth_ns" |
      awk '/^ Sent/ {gsub(/[(),]/, " "); print $2, $4, $7, $9; exit}'
  }
  # sampler NAME BASE_OR_EMPTY: every 2 s for at most 10 min, time, tbf
  # figures and (for mustserv) active/reserved/rejected, into NAME.samples.
  sampler() {
    local name=$1 base=$2 i
    for i in $(seq 300); do
      if [ -n "$base" ]; then
        echo "$SECONDS $(tbf_stats) $(curl -s -m 1 "$base/metrics" | awk '
          $1 == "mustserv_streams_active" {a = $2}
          $1 == "mustserv_uplink_reserved_bits_per_second" {r = $2}
          $1 == "mustserv_streams_rejected_total" {j = $2}
          END {printf "%d %.0f %d", a, r, j}')"
      else
        echo "$SECONDS $(tbf_stats)"
      fi
      sleep 2
    done >"$res/$name.samples"
  }

  # ---- mustserv with its budget
  b_ms_budget=0 b_ms_drop=- b_ms_over=- b_ms_tx=- b_ms_rej=- b_ms_adm=- b_ms_srvstall=- b_ms_maxact=- b_ms_maxres=0
  b_ngx_drop=- b_ngx_over=- b_ngx_tx=-
  if [ "$b_ms" = 1 ]; then
    log "B. sharing: mustserv, uplink budget $budget, in $netns"
    conf B "$budget"
    start_mustserv B 10.77.0.2:8000 "$res/B.toml" "${nsx[@]}"
    base=http://10.77.0.2:8000
    same_bytes "$base/stream/media/$video_name"
    wait_streams "$base"
    b_ms_budget=$(metric "$base" mustserv_uplink_budget_bits_per_second)
    b_rej0=$(metric "$base" mustserv_streams_rejected_total)
    b_adm0=$(metric "$base" mustserv_streams_admitted_total)
    b_stall0=$(metric "$base" mustserv_stream_stalls_total)
    read -r b_tx0 _ b_drop0 b_over0 <<<"$(tbf_stats)"
    sampler B-mustserv "$base" &
    smp=$!
    pids+=" $smp"
    players B-mustserv "$base/stream/media/$video_name" "$players_b" "$join_b" "$watch_b"
    stop_pids "$smp"
    forget "$smp"
    wait_streams "$base"
    read -r b_tx1 _ b_drop1 b_over1 <<<"$(tbf_stats)"
    b_ms_drop=$((b_drop1 - b_drop0)) b_ms_over=$((b_over1 - b_over0)) b_ms_tx=$((b_tx1 - b_tx0))
    b_ms_rej=$(($(metric "$base" mustserv_streams_rejected_total) - b_rej0))
    b_ms_adm=$(($(metric "$base" mustserv_streams_admitted_total) - b_adm0))
    b_ms_srvstall=$(($(metric "$base" mustserv_stream_stalls_total) - b_stall0))
    b_ms_maxact=$(awk 'NF >= 8 && $6 > m {m = $6} END {print m + 0}' "$res/B-mustserv.samples")
    b_ms_maxres=$(awk 'NF >= 8 && $7 > m {m = $7} END {printf "%.0f", m}' "$res/B-mustserv.samples")
    curl -s -m 5 "$base/metrics" >"$res/B-mustserv.metrics"
    stop_mustserv
  fi

  # ---- nginx, no budget
  if [ "$b_ngx" = 1 ]; then
    log "B. sharing: nginx (no budget) in $netns"
    start_nginx B 10.77.0.2:8080 "${nsx[@]}"
    base=http://10.77.0.2:8080
    same_bytes "$base/$video_name"
    read -r b_tx0 _ b_drop0 b_over0 <<<"$(tbf_stats)"
    sampler B-nginx "" &
    smp=$!
    pids+=" $smp"
    players B-nginx "$base/$video_name" "$players_b" "$join_b" "$watch_b"
    stop_pids "$smp"
    forget "$smp"
    read -r b_tx1 _ b_drop1 b_over1 <<<"$(tbf_stats)"
    b_ngx_drop=$((b_drop1 - b_drop0)) b_ngx_over=$((b_over1 - b_over0)) b_ngx_tx=$((b_tx1 - b_tx0))
    stop_nginx
  fi
fi

# ================= report ============================================================
elapsed=$((SECONDS - t_start))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.3f", a / b}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.1f%%", 100 * a / b}'; }
ok_stalled() { q "$1" '[.players[] | select(.status == "ok" and .stalls > 0)] | length'; }
ok_nostart() { q "$1" '[.players[] | select(.status == "ok" and .startup_ms == null)] | length'; }
rej503() { q "$1" '[.players[] | select(.status == "rejected" and .http_status == 503)] | length'; }
retry_after() { q "$1" '[.players[] | select(.status == "rejected") | .retry_after] | unique | map(tostring) | join(",")'; }
cancelled() { q "$1" '[.players[] | select(.end == "cancel")] | length'; }
startup() { q "$1" '.summary.startup_ms | "\(.p50 | floor)/\(.p95 | floor)/\(.max | floor)"'; }
row() { printf '  %-38s %16s %16s  %s\n' "$@"; }
{
  echo
  echo "pace-share: MuStServ $ms_version vs $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'), $(nproc) cores, $(uname -r)"
  echo "$built"
  echo "video: $video_name, $(mb "$size") MB, $(printf '%.0f' "$dur") s, average $(mbit "$avg") Mbit/s (the players consume this), peak $(mbit "$peak") Mbit/s over 4 s (mustserv probe)"
  if [ "$do_a" = 1 ]; then
    a_ms=$(q A-mustserv .summary.bytes) a_ngx=$(q A-nginx .summary.bytes)
    r=$(ratio "$a_ms" "$a_ngx")
    echo
    echo "A. waste: $players_a greedy players joining $join_a apart, each watching $watch_a, loopback; mustserv pacing defaults (burst 8s, factor 1.25), no budget"
    row "" mustserv nginx ""
    row "bytes received by players (MB)" "$(mb "$a_ms")" "$(mb "$a_ngx")" "ratio $r (target <= 0.15: $(awk -v r="$r" 'BEGIN {print (r != "-" && r <= 0.15) ? "met" : "NOT met"}'))"
    row "per player (MB)" "$(mb $((a_ms / players_a)))" "$(mb $((a_ngx / players_a)))" "file: $(mb "$size") MB"
    row "server says sent (MB)" "$(mb "$a_sent")" "$(mb "$a_ngx_log")" "mustserv: /metrics sent_bytes_total; nginx: access log"
    row "  mustserv access log / burst (MB)" "$(mb "$a_ms_log") / $(mb "$a_burst")" "" "sent - received = in socket buffers when players left"
    row "ok / rejected / failed" "$(q A-mustserv '.summary | "\(.ok)/\(.rejected)/\(.failed)"')" "$(q A-nginx '.summary | "\(.ok)/\(.rejected)/\(.failed)"')"
    row "stall-free" "$(q A-mustserv .summary.stall_free)" "$(q A-nginx .summary.stall_free)"
    row "ended: watch / eof / cancel" "$(q A-mustserv '[.players[].end] | "\(map(select(. == "watch")) | length)/\(map(select(. == "eof")) | length)/\(map(select(. == "cancel")) | length)"')" \
      "$(q A-nginx '[.players[].end] | "\(map(select(. == "watch")) | length)/\(map(select(. == "eof")) | length)/\(map(select(. == "cancel")) | length)"')"
    row "startup ms p50/p95/max" "$(startup A-mustserv)" "$(startup A-nginx)"
    row "run (s)" "$(q A-mustserv '.summary.duration_seconds | floor')" "$(q A-nginx '.summary.duration_seconds | floor')"
  fi
  if [ "$do_b" = 1 ]; then
    b_ms_ok=$(q B-mustserv .summary.stall_free)
    echo
    echo "B. sharing: $players_b greedy players joining $join_b apart, each watching $watch_b; servers in netns $netns behind tbf $uplink_mbit Mbit/s (burst $tbf_burst, latency $tbf_latency), players in the root namespace"
    echo "   TCP congestion control $ns_cc; nginx: no budget"
    if [ "$b_ms" = 1 ] && [ "$b_ms_maxact" != - ] && [ "$b_ms_maxact" -gt 0 ]; then
      # What the server reserves per stream, from /metrics (all streams
      # are of the same file).
      per=$(awk -v r="$b_ms_maxres" -v a="$b_ms_maxact" 'BEGIN {printf "%.0f", r / a}')
      echo "   mustserv: [pace] uplink = \"$budget\" ($(mbit "$b_ms_budget") Mbit/s); each stream reserves $(mbit "$per") Mbit/s (/metrics): $(awk -v u="$b_ms_budget" -v p="$per" 'BEGIN {printf "%d", u / p}') streams fit"
    fi
    row "" mustserv nginx ""
    row "ok and stall-free" "$b_ms_ok" "$(q B-nginx .summary.stall_free)" "target mustserv >= 35: $(case $b_ms_ok in -) echo - ;; *) [ "$b_ms_ok" -ge 35 ] && echo met || echo "NOT met" ;; esac)"
    row "ok but stalled" "$(ok_stalled B-mustserv)" "$(ok_stalled B-nginx)"
    row "ok, never started" "$(ok_nostart B-mustserv)" "$(ok_nostart B-nginx)"
    slow='[.players[] | select(.status == "ok" and .startup_ms != null and .startup_ms > 5000)] | length'
    row "ok, startup > 5 s" "$(q B-mustserv "$slow")" "$(q B-nginx "$slow")"
    good='[.players[] | select(.status == "ok" and .stalls == 0 and .startup_ms != null and .startup_ms <= 5000)] | length'
    row "ok, stall-free and startup <= 5 s" "$(q B-mustserv "$good")" "$(q B-nginx "$good")"
    row "rejected (503)" "$(rej503 B-mustserv)" "$(rej503 B-nginx)" "Retry-After: $(retry_after B-mustserv) s"
    other='"\([.players[] | select(.status == "rejected" and .http_status != 503)] | length)/\(.summary.failed)"'
    row "rejected (other) / failed" "$(q B-mustserv "$other")" "$(q B-nginx "$other")"
    row "stalls / stall seconds" "$(q B-mustserv '.summary | "\(.stalls)/\(.stall_seconds | floor)"')" "$(q B-nginx '.summary | "\(.stalls)/\(.stall_seconds | floor)"')"
    row "cut by the run's cap" "$(cancelled B-mustserv)" "$(cancelled B-nginx)"
    row "startup ms p50/p95/max" "$(startup B-mustserv)" "$(startup B-nginx)"
    row "bytes received (MB)" "$(mb "$(q B-mustserv .summary.bytes)")" "$(mb "$(q B-nginx .summary.bytes)")"
    row "tbf: sent MB / dropped / overlimits" "$(mb "$b_ms_tx")/$b_ms_drop/$b_ms_over" "$(mb "$b_ngx_tx")/$b_ngx_drop/$b_ngx_over"
    row "mustserv admitted / rejected" "$b_ms_adm/$b_ms_rej" "" "/metrics; max active $b_ms_maxact, max reserved $(mbit "$b_ms_maxres") Mbit/s"
    row "mustserv server-side stalls" "$b_ms_srvstall" "" "mustserv_stream_stalls_total"
    row "run (s)" "$(q B-mustserv '.summary.duration_seconds | floor')" "$(q B-nginx '.summary.duration_seconds | floor')"
  fi
  echo
  echo "total run time: ${elapsed}s; reports (mustload JSON, commands), server logs, /metrics and samples: $res"
} | tee "$res/results.txt"
