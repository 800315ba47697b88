#!/bin/sh
# bench/jobs.sh — batch jobs against synchronous requests (bench/run.sh runs it; it also
# runs alone): `sh bench/jobs.sh BIN FREE_PORT_CMD` prints one JSON line per figure:
#   {"kind":"jobs","what":"lime"|"shap","rows":N,"job_s":..,"job_rows_per_s":..,
#    "sync_one_request_s":..,"sync_rows_per_s_per_row_requests":..}
#   {"kind":"jobs_p99","idle_p99_ms":..,"during_job_p99_ms":..,"idle_rps":..,"during_rps":..}
# The server runs with --workers 2 on a free loopback port. The job's rows are the rows of
# one synchronous request (iris, varied), and the per-row figure sends the same rows one per
# request over 2 connections for BENCH_DURATION seconds (wrk). /predict p99 is wrk -c2 on a
# one-row /predict, without and then during a LIME job. Every wait is bounded.
set -u
BIN=${1:-build/explaind}
PORT=${2:-}
DUR=${BENCH_DURATION:-3}
ROWS=${BENCH_JOB_ROWS:-2048}
cd "$(dirname "$0")/.." || exit 1
W=$(mktemp -d "${TMPDIR:-/tmp}/explaind-jobs-bench.XXXXXX") || exit 1
[ -n "$PORT" ] || PORT=$(( 20000 + $$ % 20000 ))
URL=http://127.0.0.1:$PORT
"$BIN" --listen "127.0.0.1:$PORT" --model-dir models --workers 2 --queue-size 256 --log-level warn > "$W/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$W"' EXIT INT TERM
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/readyz")" = 200 ]; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo '{"kind":"error","what":"jobs bench: server not ready"}'; exit 1; }; sleep 0.1
done
rows() { awk -v n="$1" 'BEGIN { printf "["; for (i = 0; i < n; i++) printf "%s[%.2f,%.2f,%.2f,%.2f]", i ? "," : "", 4.5 + 0.07 * (i % 50), 2.2 + 0.03 * (i % 37), 1.1 + 0.11 * (i % 53), 0.1 + 0.05 * (i % 47); printf "]" }'; }
now() { date +%s.%N; }
# job PATH OPTS: seconds from submit to succeeded
job() {
  printf '{"endpoint":"%s","model":"iris","instances":%s,%s}' "$1" "$(rows "$ROWS")" "$2" > "$W/job.json"
  t0=$(now)
  id=$(curl -s --max-time 10 "$URL/jobs" --data-binary "@$W/job.json" | sed -n 's/^{"id":"\([0-9a-f]*\)".*/\1/p')
  n=0
  while [ $n -lt 6000 ]; do
    st=$(curl -s --max-time 5 "$URL/jobs/$id" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
    [ "$st" = succeeded ] && break
    [ "$st" = failed ] || [ "$st" = cancelled ] || [ -z "$st" ] && { echo "{\"kind\":\"error\",\"what\":\"job $1: $st\"}"; return 1; }
    sleep 0.02; n=$((n + 1))
  done
  echo "$(now) - $t0" | bc -l
}
sync_one() {
  printf '{"model":"iris","instances":%s,%s}' "$(rows "$ROWS")" "$2" > "$W/sync.json"
  t0=$(now)
  curl -s -o /dev/null --max-time 300 "$URL$1" --data-binary "@$W/sync.json"
  echo "$(now) - $t0" | bc -l
}
per_row_rps() {
  printf '{"model":"iris","instances":%s,%s}' "$(rows 1)" "$2" > "$W/row.json"
  wrk -t1 -c2 -d"${DUR}s" --timeout 10s -s bench/wrk/post.lua "$URL$1" -- "$W/row.json" | sed -n 's/^WRK .*"rps":\([0-9.]*\).*/\1/p'
}
for spec in "lime|/explain/lime|\"num_samples\":1000,\"seed\":1" "shap|/explain/shap|\"nsamples\":256,\"seed\":1"; do
  what=${spec%%|*}; rest=${spec#*|}; path=${rest%%|*}; opts=${rest#*|}
  js=$(job "$path" "$opts") || continue
  ss=$(sync_one "$path" "$opts")
  rr=$(per_row_rps "$path" "$opts")
  printf '{"kind":"jobs","what":"%s","rows":%d,"job_s":%.3f,"job_rows_per_s":%.1f,"sync_one_request_s":%.3f,"sync_one_request_rows_per_s":%.1f,"sync_per_row_rows_per_s":%s}\n' \
    "$what" "$ROWS" "$js" "$(echo "$ROWS / $js" | bc -l)" "$ss" "$(echo "$ROWS / $ss" | bc -l)" "${rr:-0}"
done
printf '{"model":"iris","instances":%s}' "$(rows 1)" > "$W/predict.json"
idle=$(wrk -t1 -c2 -d"${DUR}s" --timeout 10s -s bench/wrk/post.lua "$URL/predict" -- "$W/predict.json" | sed -n 's/^WRK //p')
ROWS=$((ROWS * 4))
printf '{"endpoint":"/explain/lime","model":"iris","instances":%s,"num_samples":1000}' "$(rows "$ROWS")" > "$W/job.json"
curl -s -o /dev/null --max-time 10 "$URL/jobs" --data-binary "@$W/job.json"
sleep 0.5
during=$(wrk -t1 -c2 -d"${DUR}s" --timeout 10s -s bench/wrk/post.lua "$URL/predict" -- "$W/predict.json" | sed -n 's/^WRK //p')
done_rows=$(curl -s "$URL/jobs" | sed -n 's/.*"progress":{"done":\([0-9]*\).*/\1/p' | head -n 1)
p99() { printf '%s' "$1" | sed -n 's/.*"p99_ms":\([0-9.]*\).*/\1/p'; }
rps() { printf '%s' "$1" | sed -n 's/.*"rps":\([0-9.]*\).*/\1/p'; }
printf '{"kind":"jobs_p99","idle_p99_ms":%s,"during_job_p99_ms":%s,"idle_rps":%s,"during_rps":%s,"job_rows_done_meanwhile":%s}\n' \
  "$(p99 "$idle")" "$(p99 "$during")" "$(rps "$idle")" "$(rps "$during")" "${done_rows:-0}"
