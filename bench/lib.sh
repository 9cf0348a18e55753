# Shared by the bench scripts. Source it after defining cleanup (which
# stops the script's processes; it sees the exit status in $?): it installs
# the traps that run cleanup on exit, Ctrl-C and TERM, and defines run and
# die.

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cur_pid is the command run is waiting for; cleanup should stop it.
cur_pid=""

# run runs a command in the background and waits for it, so that a signal
# reaches the trap at once and cleanup can end the command.
run() {
  "$@" &
  cur_pid=$!
  local rc=0
  wait "$cur_pid" || rc=$?
  cur_pid=""
  return "$rc"
}

# die prints its arguments after the script's name and exits 1.
die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# free_port prints a TCP port nobody listens on (in the current network
# namespace), below the ephemeral range, avoiding the ones given.
free_port() {
  local used p i
  used=$(ss -Htan | awk '{n=split($4, a, ":"); print a[n]}')
  for i in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    case " $* " in *" $p "*) continue ;; esac
    grep -qx "$p" <<<"$used" || {
      echo "$p"
      return 0
    }
  done
  die "no free port found"
}

# wait_http URL PID waits (at most 10 s) until URL answers 200 or 206 to a
# request for its first bytes (a range, so that a paced file answers at
# once); it fails as soon as PID is gone.
wait_http() {
  local url=$1 pid=$2 i code
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    code=$(curl -s -m 5 -r 0-999 -o /dev/null -w '%{http_code}' "$url" || true)
    case $code in 200 | 206) return 0 ;; esac
    sleep 0.1
  done
  return 1
}

# stop_pids PID... sends TERM to each, gives each at most 5 s to exit,
# then KILLs what is left. Empty arguments are skipped.
stop_pids() {
  local pid i
  for pid in "$@"; do
    [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    [ -n "$pid" ] || continue
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  return 0
}
