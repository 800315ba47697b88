#!/bin/sh
# bench/run.sh — explaind's benchmark suite (`make bench`): records the machine, runs the
# in-process microbenchmarks ($BUILD/bench/bench_core) and HTTP load with wrk against the
# real server on a free loopback port, then writes bench/RESULTS.md ($BUILD/bench/bench_report).
#
# Environment:
#   BUILD              build folder with explaind and bench/ (default: build)
#   BENCH_SCALE        multiplies every in-process time budget (default 1; 0.2 for a quick run)
#   BENCH_DURATION     seconds per wrk run (default 3)
#   BENCH_CONNS        connection counts of the main HTTP targets (default "1 4 16 64")
#   BENCH_OUT          where the report goes (default bench/RESULTS.md)
# Only 127.0.0.1 traffic; every run is bounded; the server is stopped with SIGTERM and its
# exit status recorded, also when something fails. OPENBLAS_CORETYPE is recorded, never set.
set -u
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
SCALE=${BENCH_SCALE:-1}
DUR=${BENCH_DURATION:-3}
CONNS=${BENCH_CONNS:-"1 4 16 64"}
OUT=${BENCH_OUT:-bench/RESULTS.md}
BIN=$BUILD/explaind
CORE=$BUILD/bench/bench_core
REPORT=$BUILD/bench/bench_report
GRAPH=$BUILD/bench/bench_graph
WORK=$(mktemp -d "${TMPDIR:-/tmp}/explaind-bench.XXXXXX") || exit 1
RES=$WORK/results.jsonl
SERVER_PID=""
START=$(date +%s)

for f in "$BIN" "$CORE" "$REPORT" "$GRAPH"; do
  [ -x "$f" ] || { echo "bench: $f is missing; run 'make BUILD=$BUILD bench'" >&2; exit 1; }
done
command -v wrk >/dev/null 2>&1 || { echo "bench: wrk is missing (Debian package wrk)" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "bench: curl is missing" >&2; exit 1; }

# JSON string escaping for the few free-text fields (CPU model, kernel, config strings).
jstr() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\n'; }
note() { printf '%s\n' "$1" >> "$RES"; }
log() { printf '[bench %3ds] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  t0=$(date +%s)
  kill -TERM "$SERVER_PID" 2>/dev/null
  # bounded: SIGKILL after 40 s (the drain timeout is 30 s), then reap it for its status
  i=0
  while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 400 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  kill -0 "$SERVER_PID" 2>/dev/null && { log "server did not stop in 40 s: SIGKILL"; kill -KILL "$SERVER_PID"; }
  wait "$SERVER_PID"
  rc=$?
  note "{\"kind\":\"server_stop\",\"workers\":$SERVER_WORKERS,\"exit\":$rc,\"seconds\":$(( $(date +%s) - t0 ))}"
  log "server (workers $SERVER_WORKERS) stopped with SIGTERM: exit status $rc"
  SERVER_PID=""
}

cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the machine ---------------------------------------------------------------------
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
CORES=$(nproc)
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
KERNEL=$(uname -srm)
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_bf16|amx_tile)$' | tr '\n' ' ')
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
HYP=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor:[[:space:]]*//p')
TPC=$(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core:[[:space:]]*//p')
note "{\"kind\":\"machine\",\"cpu\":\"$(jstr "$CPU")\",\"cores\":$CORES,\"memory\":\"$MEM\",\"kernel\":\"$(jstr "$KERNEL")\",\"isa\":\"$(jstr "$FLAGS")\",\"hypervisor\":\"$(jstr "${HYP:-none}")\",\"threads_per_core\":\"$(jstr "${TPC:-?}")\",\"load_before\":\"$LOAD\",\"date\":\"$(date -u '+%Y-%m-%d %H:%M UTC')\",\"coretype\":\"$(jstr "${OPENBLAS_CORETYPE-(unset)}")\",\"openblas_num_threads\":\"$(jstr "${OPENBLAS_NUM_THREADS-(unset)}")\",\"cc\":\"$(jstr "$(${CC:-cc} --version 2>/dev/null | head -n 1)")\",\"wrk\":\"$(jstr "$(wrk -v 2>&1 | head -n 1)")\",\"git\":\"$(jstr "$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')")\"}"
"$CORE" --machine | sed 's/^{/{"kind":"blas",/' >> "$RES"
note "{\"kind\":\"params\",\"scale\":$SCALE,\"duration\":$DUR,\"conns\":\"$CONNS\",\"build\":\"$(jstr "$BUILD")\"}"
log "machine: $CPU, $CORES cores, $MEM, load $LOAD"

# ---- 1. in-process microbenchmarks -------------------------------------------------------
log "in-process microbenchmarks (BENCH_SCALE=$SCALE)"
if ! BENCH_SCALE=$SCALE "$CORE" >> "$RES" 2> "$WORK/core.err"; then
  note "{\"kind\":\"error\",\"what\":\"bench_core failed: $(jstr "$(tail -n 3 "$WORK/core.err")")\"}"
  log "bench_core failed: $(tail -n 3 "$WORK/core.err")"
fi

# ---- 1b. graph models: the graph engine, and PyTorch on the same shapes --------------------
log "graph models (bench_graph; PyTorch: bench/graph_torch.py)"
if ! BENCH_SCALE=$SCALE "$GRAPH" >> "$RES" 2> "$WORK/graph.err"; then
  note "{\"kind\":\"error\",\"what\":\"bench_graph failed: $(jstr "$(tail -n 3 "$WORK/graph.err")")\"}"
  log "bench_graph failed: $(tail -n 3 "$WORK/graph.err")"
fi
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  BENCH_SCALE=$SCALE /usr/bin/python3 bench/graph_torch.py --jsonl >> "$RES" 2> "$WORK/torch.err" ||
    note "{\"kind\":\"error\",\"what\":\"bench/graph_torch.py failed: $(jstr "$(tail -n 3 "$WORK/torch.err")")\"}"
else
  note "{\"kind\":\"error\",\"what\":\"no PyTorch figures for the graph models: /usr/bin/python3 cannot import torch (Debian package python3-torch)\"}"
fi

# ---- 1c. segmentation: explaind's SLIC and quickshift beside scikit-image's ------------------
SEG=$BUILD/bench/bench_segment
if [ -x "$SEG" ]; then
  log "segmentation: SLIC and quickshift, 32x32 and 224x224 RGB"
  BENCH_SCALE=$SCALE "$SEG" >> "$RES" 2> "$WORK/segment.err" ||
    note "{\"kind\":\"error\",\"what\":\"bench_segment failed: $(jstr "$(tail -n 3 "$WORK/segment.err")")\"}"
  if /usr/bin/python3 -c 'import skimage.segmentation' 2>/dev/null; then
    /usr/bin/python3 bench/segment_skimage.py "$SCALE" >> "$RES" 2> "$WORK/segment_ref.err" ||
      note "{\"kind\":\"error\",\"what\":\"segment_skimage.py failed: $(jstr "$(tail -n 3 "$WORK/segment_ref.err")")\"}"
  else
    log "scikit-image missing (apt-get install python3-skimage): no reference segmentation figures"
  fi
fi

# ---- 2. HTTP load ------------------------------------------------------------------------
BODIES=$WORK/bodies
mkdir -p "$BODIES" && "$CORE" --bodies "$BODIES"

# start_server WORKERS: the real server on a free loopback port, waits for /readyz.
start_server() {
  SERVER_WORKERS=$1
  PORT=$("$CORE" --free-port)
  URL=http://127.0.0.1:$PORT
  "$BIN" --listen "127.0.0.1:$PORT" --model-dir "${MODEL_DIR:-models}" --workers "$1" --queue-size 256 --log-level warn \
    > "$WORK/server-$1.log" 2>&1 &
  SERVER_PID=$!
  i=0
  while [ $i -lt 300 ]; do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/readyz")" = 200 ]; then
      log "server pid $SERVER_PID ready on $URL with --workers $1 after $((i / 10)).$((i % 10)) s"
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
  done
  note "{\"kind\":\"error\",\"what\":\"server with --workers $1 was not ready: $(jstr "$(tail -n 3 "$WORK/server-$1.log")")\"}"
  log "server not ready; log: $(tail -n 3 "$WORK/server-$1.log")"
  stop_server
  return 1
}

# target NAME PATH BODY(or -): checks one request answers 200, then sets TPATH/TBODY.
check_target() {
  if [ "$3" = - ]; then
    code=$(curl -s -o "$WORK/answer" -w '%{http_code}' --max-time 30 "$URL$2")
  else
    code=$(curl -s -o "$WORK/answer" -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' \
      --data-binary "@$BODIES/$3.json" "$URL$2")
  fi
  if [ "$code" != 200 ]; then
    note "{\"kind\":\"error\",\"what\":\"$1 answered $code: $(jstr "$(head -c 300 "$WORK/answer")")\"}"
    log "$1 answered $code: $(head -c 300 "$WORK/answer")"
    return 1
  fi
  return 0
}

# load NAME PATH BODY CONNS...: one bounded wrk run per connection count.
load() {
  name=$1 path=$2 body=$3
  shift 3
  check_target "$name" "$path" "$body" || return 0
  for c in "$@"; do
    tag="\"kind\":\"http\",\"target\":\"$name\",\"path\":\"$path\",\"conns\":$c,\"workers\":$SERVER_WORKERS"
    if [ "$body" = - ]; then
      line=$(WRK_TAG=$tag timeout $((DUR + 30)) wrk -t1 -c"$c" -d"${DUR}s" --timeout 10s \
        -s bench/wrk/get.lua "$URL$path" 2> "$WORK/wrk.err" | sed -n 's/^WRK //p')
    else
      line=$(WRK_TAG=$tag timeout $((DUR + 30)) wrk -t1 -c"$c" -d"${DUR}s" --timeout 10s \
        -s bench/wrk/post.lua "$URL$path" -- "$BODIES/$body.json" 2> "$WORK/wrk.err" | sed -n 's/^WRK //p')
    fi
    if [ -n "$line" ]; then
      printf '%s\n' "$line" >> "$RES"
      log "$name c=$c: $(printf '%s' "$line" | sed 's/.*"rps":\([0-9.]*\).*"p50_ms":\([0-9.]*\).*"p99_ms":\([0-9.]*\).*"non2xx":\([0-9]*\).*"socket_errors":\([0-9]*\).*/\1 req\/s, p50 \2 ms, p99 \3 ms, non-2xx \4, socket errors \5/')"
    else
      note "{\"kind\":\"error\",\"what\":\"wrk $name c=$c printed no result: $(jstr "$(tail -n 2 "$WORK/wrk.err")")\"}"
    fi
  done
}

echo "wrk -t1 -c<conns> -d${DUR}s --timeout 10s -s bench/wrk/post.lua <url> -- <body.json>" > "$WORK/wrk_cmd"
note "{\"kind\":\"wrk_cmd\",\"cmd\":\"$(jstr "$(cat "$WORK/wrk_cmd")")\"}"

if start_server 2; then
  log "HTTP load, --workers 2, ${DUR} s per run, connections: $CONNS"
  load healthz /healthz - $CONNS
  load predict_1 /predict predict_1 $CONNS
  load predict_100 /predict predict_100 $CONNS
  load lime /explain/lime lime $CONNS
  load ig_1 /explain/gradient ig_1 $CONNS
  load ig_100 /explain/gradient ig_100 $CONNS
  # one connection (and two) for the other reference comparisons
  load lime_continuous /explain/lime lime_continuous 1 2
  load saliency /explain/gradient saliency 1
  load smoothgrad /explain/gradient smoothgrad 1
  load shap /explain/shap shap 1 2
  load importance /importance importance 1 2
  load pdp /explain/pdp pdp 1 2
  stop_server
fi
if start_server 1; then
  log "HTTP load, --workers 1 (LIME scaling)"
  load lime /explain/lime lime 1 4 16
  stop_server
fi
# Tree ensembles against XGBoost's own C++ (tools/bench_trees.py): a 120-tree depth-5
# model, 1,000 rows per request over HTTP with one connection, and XGBoost's predict and
# pred_contribs (nthread=2) timed in-process in this same run. Needs python3-xgboost.
TREES_DIR=$WORK/trees
if mkdir -p "$TREES_DIR" && /usr/bin/python3 tools/bench_trees.py make "$TREES_DIR" 2> "$WORK/trees.err"; then
  cp "$TREES_DIR"/trees_predict.json "$TREES_DIR"/trees_shap.json "$BODIES"/
  MODEL_DIR=$TREES_DIR
  if start_server 2; then
    log "tree ensembles: /predict and /explain/shap, 1,000 rows, one connection"
    # the server's CPU time over each run (utime + stime, in clock ticks), which other
    # load on a shared machine inflates much less than wall-clock latency
    for tt in trees_predict:/predict trees_shap:/explain/shap; do
      c0=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
      load "${tt%%:*}" "${tt#*:}" "${tt%%:*}" 1
      c1=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
      note "{\"kind\":\"trees_cpu\",\"target\":\"${tt%%:*}\",\"ticks\":$((c1 - c0)),\"hz\":$(getconf CLK_TCK)}"
    done
    stop_server
  fi
  MODEL_DIR=models
  log "XGBoost in-process (nthread=2), same rows"
  /usr/bin/python3 tools/bench_trees.py ref "$TREES_DIR" >> "$RES" 2>> "$WORK/trees.err" ||
    note "{\"kind\":\"error\",\"what\":\"XGBoost reference timing failed: $(jstr "$(tail -n 2 "$WORK/trees.err")")\"}"
else
  note "{\"kind\":\"error\",\"what\":\"tree benchmark skipped: $(jstr "$(tail -n 2 "$WORK/trees.err")")\"}"
fi

# batch jobs: rows/s of a LIME and a SHAP job beside synchronous requests, and /predict p99
# while a job runs (bench/jobs.sh starts its own server with --workers 2)
log "batch jobs (bench/jobs.sh)"
sh bench/jobs.sh "$BIN" "$("$CORE" --free-port)" >> "$RES" 2>> "$WORK/jobs.err" ||
  note "{\"kind\":\"error\",\"what\":\"bench/jobs.sh: $(jstr "$(tail -n 3 "$WORK/jobs.err")")\"}"
for w in 2 1; do
  [ -s "$WORK/server-$w.log" ] && note "{\"kind\":\"server_log\",\"workers\":$w,\"tail\":\"$(jstr "$(tail -n 5 "$WORK/server-$w.log")")\"}"
done

# ---- 2b. text explanations: one ~20-word text over HTTP beside PyTorch/numpy on the same models
TEXT_BENCH="The acting was superb, but the ending felt rather dull and the script was a waste of two hours tonight."
# text_time NAME PATH BODY: median wall time (ms) of 5 requests after one warm-up.
text_time() {
  curl -s -o /dev/null --max-time 120 "$URL$2" -H 'Content-Type: application/json' -d "$3"
  for i in 1 2 3 4 5; do
    curl -s -o /dev/null -w '%{time_total}\n' --max-time 120 "$URL$2" -H 'Content-Type: application/json' -d "$3"
  done | sort -n | sed -n 3p | awk -v id="$1" '{printf "{\"kind\":\"text_http\",\"id\":\"%s\",\"median_ms\":%.2f}\n", id, $1 * 1000}' >> "$RES"
}
if start_server 2; then
  log "text explanations over HTTP (layer IG 50 steps, LIME 5000 samples)"
  for m in reviews_bert reviews_gru; do
    text_time "ig_$m" /explain/gradient "{\"model\":\"$m\",\"instance\":\"$TEXT_BENCH\",\"steps\":50,\"target\":1}"
    text_time "lime_$m" /explain/lime "{\"model\":\"$m\",\"instance\":\"$TEXT_BENCH\",\"num_samples\":5000,\"seed\":0,\"labels\":[1]}"
  done
  stop_server
  # the work floor of each figure: the models' FLOPs on this text and on LIME's perturbed texts
  "$GRAPH" --text-flops "$TEXT_BENCH" >> "$RES" 2> "$WORK/text_flops.err" ||
    note "{\"kind\":\"error\",\"what\":\"bench_graph --text-flops failed: $(jstr "$(tail -n 3 "$WORK/text_flops.err")")\"}"
  if /usr/bin/python3 -c 'import torch, sklearn, onnx' 2>/dev/null; then
    /usr/bin/python3 bench/text_torch.py 5 >> "$RES" 2> "$WORK/text_ref.err" ||
      note "{\"kind\":\"error\",\"what\":\"text_torch.py failed: $(jstr "$(tail -n 3 "$WORK/text_ref.err")")\"}"
  else
    log "PyTorch missing (apt-get install python3-torch python3-sklearn python3-onnx): no reference text figures"
  fi
fi

# ---- 2c. image explanations: one 32x32 RGB image over HTTP beside torch/numpy references ----
IMG_B64=$(sed -n 's/.*"images":\["\([^"]*\)".*/\1/p' tests/golden/image_explain/shapes.json)
# image_time KIND ID PATH BODY: median of 5 requests after a warm-up; the server's CPU time
# per request (utime + stime of the process over the 5, from /proc: the machine may be
# busy); and the median over the 5 of the busiest server thread's CPU time during the
# request (/proc/PID/task/*/schedstat, ns): its critical path, what the wall time would be
# on idle cores apart from HTTP, which shows one request split over the workers.
task_cpu() { for t in /proc/$SERVER_PID/task/*; do echo "${t##*/} $(cut -d' ' -f1 "$t/schedstat" 2>/dev/null || echo 0)"; done | sort; }
image_time() {
  curl -s -o /dev/null --max-time 120 "$URL$3" -H 'Content-Type: application/json' -d "$4"
  c0=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
  : > "$WORK/img_wall"
  : > "$WORK/img_crit"
  for i in 1 2 3 4 5; do
    task_cpu > "$WORK/t0"
    curl -s -o /dev/null -w '%{time_total}\n' --max-time 120 "$URL$3" -H 'Content-Type: application/json' -d "$4" >> "$WORK/img_wall"
    task_cpu > "$WORK/t1"
    join "$WORK/t0" "$WORK/t1" | awk '{d = ($3 - $2) / 1e6; if (d > m) m = d} END {printf "%.3f\n", m}' >> "$WORK/img_crit"
  done
  c1=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
  med=$(sort -n "$WORK/img_wall" | sed -n 3p)
  crit=$(sort -n "$WORK/img_crit" | sed -n 3p)
  awk -v k="$1" -v id="$2" -v m="$med" -v cr="$crit" -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v w="$SERVER_WORKERS" \
    'BEGIN {printf "{\"kind\":\"%s\",\"id\":\"%s\",\"workers\":%d,\"median_ms\":%.2f,\"cpu_ms\":%.1f,\"critical_ms\":%.2f}\n", k, id, w, m * 1000, c * 1000 / hz / 5, cr}' >> "$RES"
}
image_cases() {
  IMG="{\"b64\":\"$IMG_B64\"}"
  image_time "$1" ig_50 /explain/gradient "{\"model\":\"shapes\",\"instance\":$IMG,\"steps\":50}"
  image_time "$1" occlusion_4x4_s2 /explain/occlusion "{\"model\":\"shapes\",\"instance\":$IMG}"
  image_time "$1" lime_1000 /explain/lime "{\"model\":\"shapes\",\"instance\":$IMG,\"num_samples\":1000,\"seed\":0,\"segmentation\":{\"method\":\"grid\",\"size\":8}}"
}
if [ -n "$IMG_B64" ] && start_server 1; then
  log "image explanations over HTTP (IG 50 steps, occlusion 4x4 stride 2, LIME 1000 samples), 1 then 2 workers"
  "$GRAPH" --floors >> "$RES" 2>> "$WORK/graph.err"
  image_cases image_http
  stop_server
  start_server 2 && image_cases image_http_w2
  stop_server
  if /usr/bin/python3 -c 'import torch, sklearn, onnx, PIL' 2>/dev/null; then
    /usr/bin/python3 tools/image_explain_reference.py --bench >> "$RES" 2> "$WORK/image_ref.err" ||
      note "{\"kind\":\"error\",\"what\":\"image_explain_reference.py failed: $(jstr "$(tail -n 3 "$WORK/image_ref.err")")\"}"
  else
    log "PyTorch missing (apt-get install python3-torch python3-sklearn python3-onnx python3-pil): no reference image figures"
  fi
fi

# ---- 3. the report -------------------------------------------------------------------------
note "{\"kind\":\"end\",\"seconds\":$(( $(date +%s) - START )),\"load_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
cp "$RES" "$BUILD/bench/results.jsonl"
if "$REPORT" "$RES" > "$WORK/RESULTS.md"; then
  /usr/bin/python3 tools/bench_trees.py report "$RES" >> "$WORK/RESULTS.md" 2>/dev/null || true
  mv "$WORK/RESULTS.md" "$OUT"
  log "wrote $OUT (raw lines: $BUILD/bench/results.jsonl) in $(( $(date +%s) - START )) s"
else
  log "bench_report failed; raw lines kept in $BUILD/bench/results.jsonl"
  exit 1
fi
