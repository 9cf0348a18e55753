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
