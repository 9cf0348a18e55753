#!/usr/bin/env bash
# bench/placement.sh — bandwidth-aware placement against plain round robin
# (issue 8, acceptance point 3). It runs TestPlacementBenchmark in
# cmd/mustserv: three MuStServ nodes, each in its own network namespace,
# over one S3 bucket (versitygw), with uplink budgets of 4, 4 and 16 Mbit/s
# (31, 31 and 124 streams of the library's 128 kbit/s MP3s). 180 simulated
# players (internal/loadgen) join 20 ms apart and watch 20 s each, four
# times:
#   1. round robin (DNS): the players take the nodes' own URLs in turn;
#   2. through HAProxy (roundrobin, the configuration `mustserv
#      haproxy-config` prints: /readyz checks every 500 ms);
#   3. and 4. the same with [cluster] placement = true: a node whose budget
#      is full answers 307 to the peer with the most free uplink.
# It prints players ok, refused (503), stall-free, redirects and the streams
# each node admitted. Run as root (network namespaces); about 2 minutes.
#
# usage: bash bench/placement.sh
#
# Needs go, ffmpeg, haproxy, iproute2 and versitygw (go install
# github.com/versity/versitygw/cmd/versitygw@v1.8.0), as .ci/run installs.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/args.sh
export GOTOOLCHAIN=go1.27.3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
MUSTSERV_PLACEMENT_BENCH=1 MUSTSERV_BENCH_OUT="$out" \
  go test -count=1 -run '^TestPlacementBenchmark$' ./cmd/mustserv/ >/dev/null ||
  { echo "placement: the benchmark failed; run: MUSTSERV_PLACEMENT_BENCH=1 go test -v -run '^TestPlacementBenchmark\$' ./cmd/mustserv/" >&2; exit 1; }
echo "commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d), $(nproc) cores"
cat "$out"
