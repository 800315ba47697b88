#!/bin/sh
# run.sh — runs every $BUILD/tests/test_* program, each in its own process with a
# timeout, and prints one closing line "N passed, N failed, N skipped" summed over all of them.
#
# Each program prints its own "N passed, N failed" (or "N passed, N failed, N skipped"
# when it can skip tests for want of a tool) as its last stdout line. A program
# that exits non-zero without reporting a failure (a crash, a timeout, a valgrind error,
# a missing closing line) counts as one more failure. VALGRIND=1 runs the programs under
# valgrind (and the harness runs the server under it too). Exit status 0 only when
# nothing failed.
#   BUILD=build sh tests/run.sh            TEST_TIMEOUT=300 (seconds per program)
#   BUILD=build sh tests/run.sh test_pool  (only the programs named)
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
export BUILD
TIMEOUT=${TEST_TIMEOUT:-300}
VG=""
if [ -n "$VALGRIND" ] && [ "$VALGRIND" != 0 ]; then
  VG="valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect"
  TIMEOUT=${TEST_TIMEOUT:-1200}
fi

passed=0
failed=0
skipped=0
ran=0
out=$(mktemp "${TMPDIR:-/tmp}/xd-run.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT INT TERM

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  if [ $# -gt 0 ]; then
    case " $* " in *" $name "*) ;; *) continue ;; esac
  fi
  ran=$((ran + 1))
  echo "== $name"
  # shellcheck disable=SC2086  # $VG is a word list on purpose
  timeout -k 10 "$TIMEOUT" $VG "$t" >"$out"
  rc=$?
  cat "$out"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  p=0
  f=0
  s=0
  if [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    case $line in *" skipped"*) s=$(echo "$line" | sed -E 's/^[0-9]+ passed, [0-9]+ failed, ([0-9]+) skipped.*/\1/') ;; esac
  fi
  if { [ "$rc" -ne 0 ] || [ -z "$line" ]; } && [ "$f" -eq 0 ]; then
    case $rc in
      124 | 137) why="timed out after ${TIMEOUT} s" ;;
      *) if [ "$rc" -gt 128 ]; then why="killed by signal $((rc - 128))"; else why="exit status $rc"; fi ;;
    esac
    [ -z "$line" ] && why="$why, no closing line"
    echo "!! $name: $why (counted as one failure)"
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
done

if [ "$ran" -eq 0 ]; then
  echo "no test programs in $BUILD/tests (build them with: make BUILD=$BUILD all)" >&2
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
