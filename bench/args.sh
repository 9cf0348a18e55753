# Sourced first by the bench scripts, with their arguments: their one
# option. Sets quick=1 for --quick; -h or --help prints the script's
# header comment and exits; anything else is an error.
quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
      exit 0
      ;;
    *)
      echo "$(basename "$0"): unknown argument $arg (try --help)" >&2
      exit 2
      ;;
  esac
done
