#!/usr/bin/env bash
# Alpes streaming load bench: REST upload -> Kafka -> worker -> ImagenAnonimizada,
# side by side with Orthanc (POST /instances + POST /instances/{id}/anonymize).
# See bench/load/README.md. One command: bench/load/run.sh
#
# Environment (defaults in brackets):
#   CONCURRENCY   concurrent clients for the comparison phases ["8 32"]
#   FILES         use only the first N corpus files (0 = all) [0]
#   SUSTAIN_S     length of the sustained (memory) run, s; 0 skips it [600]
#   TARGET_S      length of the target-load run (Alpes paced at 3 x Orthanc's files/s), s; 0 skips it [60]
#   SUSTAIN_C     clients in the paced runs [32]
#   RATE          uploads/s in the sustained run; "auto" = the target load (3 x Orthanc's files/s at
#                 SUSTAIN_C, or at the largest C) capped at 80 % of Alpes' measured pipeline rate [auto]
#   SAMPLE_S      RSS/CPU sampling period, s [5]
#   WORK          scratch dir (data dirs, per-request logs, server logs) [/tmp/alpes-load]
#   RESULTS       where the small result files go [bench/load/results/<UTC date-time>]
#   SKIP_BUILD=1  use target/release/alpes as it is
#   ALPES         the binary to test [target/release/alpes, copied into WORK first]
#   NO_INSTALL=1  do not apt-get / pip install anything
#   ALPES_UPLOAD_QUERY  the profile query of every Alpes upload, e.g. "no_clean=pixel-data" [] (the
#                 default profile, which cleans burned-in text from ultrasound pixel data)
#   QUIET_S       seconds to wait after deleting the previous run's files, before measuring [300]
#   ALPES_UP_ARGS extra arguments for `alpes up`, e.g. "--kafka-prop fetch.wait.max.ms=10" []
#   ENGINES_DIR   also run Alpes on the real engines of deploy/local/engines.sh running there (Kafka x3,
#                 Cassandra, S3, registry), after Alpes on the mock at each C: the same corpus, clients and
#                 measurements, with `alpes migrate` into a fresh keyspace first; unset skips it []
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
HERE=bench/load
CONCURRENCY=${CONCURRENCY:-"8 32"}
FILES=${FILES:-0}
SUSTAIN_S=${SUSTAIN_S:-600}
TARGET_S=${TARGET_S:-60}
SUSTAIN_C=${SUSTAIN_C:-32}
RATE=${RATE:-auto}
SAMPLE_S=${SAMPLE_S:-5}
WORK=${WORK:-/tmp/alpes-load}
STAMP=$(date -u +%Y-%m-%d-%H%M%S)
RESULTS=${RESULTS:-$HERE/results/$STAMP}
VENV=${VENV:-bench/.venv}
PY=$VENV/bin/python
CORPUS=${CORPUS:-bench/corpus/dicom}
QUIET_S=${QUIET_S:-300}

# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh # log, die, free_port, cpu_s, rss_kb

# ---------------------------------------------------------------- install
if [[ -z ${NO_INSTALL:-} ]]; then
    apt_install_missing wrk:wrk Orthanc:orthanc
    [[ -x $PY ]] || python3 -m venv "$VENV"
    "$PY" -c 'import confluent_kafka' 2>/dev/null || "$VENV/bin/pip" install -q confluent-kafka
    ensure_corpus
fi
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
command -v Orthanc >/dev/null || die "Orthanc is missing (apt-get install orthanc)"
if [[ -n ${ENGINES_DIR:-} ]]; then
    engines_status=$(deploy/local/engines.sh status "$ENGINES_DIR" 2>/dev/null || true)
    grep -q '^kafka-1 running' <<<"$engines_status" ||
        die "no engines running in $ENGINES_DIR (deploy/local/engines.sh start $ENGINES_DIR)"
fi
[[ -d $CORPUS ]] || die "no corpus at $CORPUS (bench/.venv/bin/python bench/make_corpus.py)"

# ---------------------------------------------------------------- build
mkdir -p "$WORK" "$RESULTS"
old=("${WORK:?}"/run-*)
if [[ -e ${old[0]} ]]; then
    rm -rf "${old[@]}"
    # ext4 without a journal (this VM's disk) does not reuse an inode freed in the last
    # 60-300 s: every file created meanwhile scans past the freed ones, which makes file
    # creation several times slower, for both servers. Wait that out before measuring.
    log "deleted the previous run's files; waiting ${QUIET_S}s before measuring (QUIET_S)"
    sleep "$QUIET_S"
fi
RUN=$WORK/run-$STAMP
mkdir -p "$RUN"
if [[ -z ${SKIP_BUILD:-} && -z ${ALPES:-} ]]; then
    log "cargo build --release -p alpes --locked"
    build_t0=$(date +%s)
    cargo build --release -p alpes --locked 2>&1 | tail -n 3 >&2
    log "build took $(($(date +%s) - build_t0)) s"
fi
SRC_BIN=${ALPES:-target/release/alpes}
[[ -x $SRC_BIN ]] || die "no Alpes binary at $SRC_BIN"
# A private copy: a concurrent `cargo build` must not swap the binary under the run.
cp "$SRC_BIN" "$RUN/alpes"
ALPES_BIN=$RUN/alpes
"$ALPES_BIN" up --help >/dev/null 2>&1 || die "$SRC_BIN has no 'up' subcommand (stale build?)"

# ---------------------------------------------------------------- corpus list
find "$CORPUS" -type f -name '*.dcm' | LC_ALL=C sort >"$RUN/files.txt"
if ((FILES > 0)); then head -n "$FILES" "$RUN/files.txt" >"$RUN/f" && mv "$RUN/f" "$RUN/files.txt"; fi
N_FILES=$(wc -l <"$RUN/files.txt")
N_BYTES=$(xargs -a "$RUN/files.txt" -d '\n' stat -c %s | awk '{s+=$1} END {print s}')
cat "$RUN/files.txt" | xargs -d '\n' cat >/dev/null # warm the page cache
log "corpus: $N_FILES files, $N_BYTES bytes"

# ---------------------------------------------------------------- helpers

ALPES_DIR=$RUN; ALPES_PID= ; ORTHANC_PID= ; TAIL_PID= ; SAMPLER_PID= ; WRK_PID=
cleanup() {
    set +e
    [[ -n $WRK_PID ]] && kill -INT "$WRK_PID" 2>/dev/null
    [[ -n $SAMPLER_PID ]] && kill "$SAMPLER_PID" 2>/dev/null
    stop_alpes
    stop_orthanc_run
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_sampler() {
    echo "unix_s,phase,alpes_rss_kb,alpes_cpu_s,orthanc_rss_kb,orthanc_cpu_s,load1" >"$RUN/samples.csv"
    (
        while :; do
            a=$(cat "$RUN/alpes.pid" 2>/dev/null || true)
            o=$(cat "$RUN/orthanc.pid" 2>/dev/null || true)
            ar=-; ac=-; or=-; oc=-
            if [[ -n $a && -d /proc/$a ]]; then ar=$(rss_kb "$a"); ac=$(cpu_s "$a"); fi
            if [[ -n $o && -d /proc/$o ]]; then or=$(rss_kb "$o"); oc=$(cpu_s "$o"); fi
            printf '%s,%s,%s,%s,%s,%s,%s\n' "$(date +%s.%N | cut -c1-14)" "$(cat "$RUN/phase" 2>/dev/null || echo -)" \
                "${ar:--}" "$ac" "${or:--}" "$oc" "$(cut -d' ' -f1 /proc/loadavg)" >>"$RUN/samples.csv"
            sleep "$SAMPLE_S"
        done
    ) &
    SAMPLER_PID=$!
}
phase() { echo "$1" >"$RUN/phase"; log "phase $1"; }

# The environment of the Alpes commands: none on the mock; on the engines, their
# settings (engines.sh env) and a keyspace of the run's own.
ALPES_ENV=()
alpes_cmd() { env "${ALPES_ENV[@]}" "$ALPES_BIN" "$@"; }

start_alpes() { # $1 = name, $2 = "engines" to run on the engines of ENGINES_DIR
    local dir=$RUN/$1
    ALPES_DIR=$dir
    rm -rf "$dir"; mkdir -p "$dir"
    ALPES_ENV=()
    if [[ ${2:-} == engines ]]; then
        # NAME=value pairs of the export lines, their quoting undone by the shell.
        mapfile -t ALPES_ENV < <(
            exports=$(deploy/local/engines.sh env "$ENGINES_DIR")
            eval "$exports"
            sed -n 's/^export \([A-Za-z0-9_]*\)=.*/\1/p' <<<"$exports" | while read -r n; do printf '%s=%s\n' "$n" "${!n}"; done
        )
        ALPES_ENV+=("SCYLLA_KEYSPACE=bench_${STAMP//-/_}_${1//-/_}")
        alpes_cmd migrate >"$dir/migrate.log" 2>&1 || die "alpes migrate failed: $(tail -5 "$dir/migrate.log")"
    fi
    # Not through alpes_cmd: a function in the background would be a subshell, and
    # ALPES_PID its pid; env execs the binary, so $! is the server's own pid.
    # shellcheck disable=SC2086 # ALPES_UP_ARGS is a list of extra arguments
    env "${ALPES_ENV[@]}" "$ALPES_BIN" up --data-dir "$dir/data" --listen 127.0.0.1:0 ${ALPES_UP_ARGS:-} >"$dir/stdout" 2>"$dir/stderr" &
    ALPES_PID=$!
    echo "$ALPES_PID" >"$RUN/alpes.pid"
    for _ in $(seq 300); do
        grep -q 'kafka bootstrap' "$dir/stdout" 2>/dev/null && break
        kill -0 "$ALPES_PID" 2>/dev/null || die "alpes up exited: $(tail -5 "$dir/stderr")"
        sleep 0.1
    done
    ALPES_URL=$(sed -n 's/^alpes: listening on \(http[^ ]*\).*/\1/p' "$dir/stdout")
    BOOTSTRAP=$(sed -n 's/^alpes: kafka bootstrap \([^ ]*\).*/\1/p' "$dir/stdout")
    [[ -n $ALPES_URL && -n $BOOTSTRAP ]] || die "cannot parse alpes up output: $(cat "$dir/stdout")"
    curl -fsS "$ALPES_URL/health" >/dev/null || die "alpes /health failed"
    "$PY" "$HERE/kafka_tail.py" "$BOOTSTRAP" "$dir/events.tsv" --ready "$dir/tail.ready" 2>"$dir/tail.stderr" &
    TAIL_PID=$!
    for _ in $(seq 300); do [[ -f $dir/tail.ready ]] && break; sleep 0.1; done
    [[ -f $dir/tail.ready ]] || die "kafka_tail did not start: $(cat "$dir/tail.stderr")"
    # Warm-up: one upload (its own provider) must come out anonymized before the measured load,
    # so the worker has joined its consumer group and every client is connected.
    local tok id
    tok=$(alpes_cmd token --create-account --user warmup --role proveedor --data-dir "$dir/data" 2>/dev/null)
    id=$(curl -fsS -H "Authorization: Bearer $tok" -H 'Content-Type: application/dicom' \
        --data-binary @"$(head -1 "$RUN/files.txt")" "$ALPES_URL/imagenes" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
    [[ -n $id ]] || die "warm-up upload failed"
    local t0=$SECONDS
    until grep -q "^alpes.images.anonymized	[0-9]*	[0-9]*	$id	" "$dir/events.tsv" 2>/dev/null; do
        ((SECONDS - t0 < 120)) || die "warm-up image $id not anonymized after 120 s"
        sleep 0.2
    done
    log "alpes $1: pid $ALPES_PID, $ALPES_URL, kafka $BOOTSTRAP, warm-up anonymized after $((SECONDS - t0)) s, rss $(rss_kb "$ALPES_PID") kB"
}
stop_alpes() {
    if [[ -n $TAIL_PID ]]; then echo "$(basename "$ALPES_DIR") $(cpu_s "$TAIL_PID")" >>"$RESULTS/kafka-tail-cpu-s.txt"; kill "$TAIL_PID" 2>/dev/null; wait "$TAIL_PID" 2>/dev/null; TAIL_PID=; fi
    if [[ -n $ALPES_PID ]]; then
        kill -INT "$ALPES_PID" 2>/dev/null
        for _ in $(seq 300); do kill -0 "$ALPES_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$ALPES_PID" 2>/dev/null && { log "alpes did not stop in 30 s: SIGKILL"; kill -KILL "$ALPES_PID"; }
        wait "$ALPES_PID" 2>/dev/null
        ALPES_PID=; rm -f "$RUN/alpes.pid"
    fi
    return 0
}

start_orthanc() { # $1 = name
    local dir=$RUN/$1
    rm -rf "$dir"
    launch_orthanc "$dir" 50
    echo "$ORTHANC_PID" >"$RUN/orthanc.pid"
    # Warm-up, as for Alpes: store, anonymize and delete one file.
    local id
    id=$(curl -fsS -H 'Content-Type: application/dicom' --data-binary @"$(head -1 "$RUN/files.txt")" \
        "$ORTHANC_URL/instances" | sed -n 's/.*"ID" *: *"\([^"]*\)".*/\1/p')
    [[ -n $id ]] || die "Orthanc warm-up upload failed"
    curl -fsS -X POST -d '{}' "$ORTHANC_URL/instances/$id/anonymize" >/dev/null || die "Orthanc warm-up anonymize failed"
    curl -fsS -X DELETE "$ORTHANC_URL/instances/$id" >/dev/null || die "Orthanc warm-up delete failed"
    log "orthanc $1: pid $ORTHANC_PID, $ORTHANC_URL, rss $(rss_kb "$ORTHANC_PID") kB"
}
stop_orthanc_run() {
    stop_orthanc
    rm -f "$RUN/orthanc.pid"
}

# run_wrk MODE URL TOKENS LOGDIR PASSES RATE C DURATION_S
# PASSES > 0: stops as soon as every thread has done its passes (done-* markers).
run_wrk() {
    local mode=$1 url=$2 tokens=$3 logdir=$4 passes=$5 rate=$6 c=$7 dur=$8
    mkdir -p "$logdir"
    rm -f "$logdir"/req-*.tsv "$logdir"/done-*
    # Loading the bodies happens before the threads start; every thread waits for start_at.
    local lead=$((2 + N_BYTES / 50000000))
    local start_at=$(($(date +%s) + lead))
    local cmd=(wrk -t "$c" -c "$c" -d "$((dur + lead))s" --timeout 30s -s "$HERE/upload.lua" "$url"
        -- "$mode" "$RUN/files.txt" "$tokens" "$logdir" "$passes" "$rate" "$start_at" "$c")
    echo "${cmd[*]}" >"$logdir/command.txt"
    "${cmd[@]}" >"$logdir/wrk.stdout" 2>"$logdir/wrk.stderr" &
    WRK_PID=$!
    WRK_CPU=0
    while kill -0 "$WRK_PID" 2>/dev/null; do
        local cpu n
        cpu=$(cpu_s "$WRK_PID"); [[ $cpu == 0 ]] || WRK_CPU=$cpu # the client's own CPU (same 2 cores)
        if ((passes > 0)); then
            n=$(find "$logdir" -maxdepth 1 -name 'done-*' | wc -l)
            ((n >= c)) && { kill -INT "$WRK_PID"; break; }
        fi
        sleep 0.2
    done
    wait "$WRK_PID" || log "wrk exited $? ($(tail -2 "$logdir/wrk.stderr"))"
    WRK_PID=
    echo "$WRK_CPU" >"$logdir/wrk-cpu-s.txt"
    [[ -s $logdir/wrk.stderr ]] && log "wrk stderr: $(head -c 400 "$logdir/wrk.stderr")"
    echo "$start_at"
}

mint_tokens() { # DATA_DIR PREFIX COUNT OUT
    : >"$4"
    for i in $(seq 1 "$3"); do
        alpes_cmd token --create-account --user "$2-$i" --role proveedor --data-dir "$1" 2>/dev/null >>"$4"
    done
}

warnings() { # STDERR_LOG OUT: count and first lines of WARN/ERROR log records
    { printf 'WARN: %s  ERROR: %s\n' "$(grep -c '"level":"WARN"' "$1")" "$(grep -c '"level":"ERROR"' "$1")"
      grep '"level":"\(WARN\|ERROR\)"' "$1" | cut -c1-400 | head -20; } >"$2" 2>/dev/null || true
}
metrics_snapshot() { curl -fsS "$ALPES_URL/metrics" 2>/dev/null | grep -v '^#' >"$1" || true; }

# ---------------------------------------------------------------- meta
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo "+uncommitted changes" || true)
cat >"$RESULTS/meta.json" <<EOF
{
 "date_utc": "$STAMP",
 "commit": "$COMMIT$DIRTY",
 "alpes_sha256": "$(sha256sum "$ALPES_BIN" | cut -c1-16)",
 "nproc": $(nproc),
 "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')",
 "mem_gib": $(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo),
 "loadavg_before": "$LOAD_BEFORE",
 "kernel": "$(uname -r)",
 "wrk": "$(wrk -v 2>&1 | head -1 | cut -c1-60)",
 "orthanc": "$(Orthanc --version 2>&1 | head -1)",
 "corpus_files": $N_FILES,
 "corpus_bytes": $N_BYTES,
 "concurrency": [$(echo "$CONCURRENCY" | tr ' ' ',')],
 "alpes_up_args": "${ALPES_UP_ARGS:-}",
 "alpes_upload_query": "${ALPES_UPLOAD_QUERY:-}",
 "work_dir": "$RUN"
}
EOF
log "machine: $(nproc) cores, load average before: $LOAD_BEFORE"

start_sampler

# ---------------------------------------------------------------- comparison phases
jget() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))" "$@"; }
declare -A ORTHANC_FPS ALPES_FPS
# engines_cpu: "instance cpu_s" per engine process of ENGINES_DIR (their PID files).
engines_cpu() {
    local f
    for f in "$ENGINES_DIR"/pids/*.pid; do echo "$(basename "$f" .pid) $(cpu_s "$(cat "$f")")"; done
}

# measure_alpes NAME C [engines]: the whole corpus once through Alpes, C clients.
measure_alpes() {
    local name=$1 C=$2 cpu0 cpu1 rss
    start_alpes "$name" "${3:-}"
    mint_tokens "$RUN/$name/data" "prov-c$C" 1 "$RUN/$name/tokens.txt"
    phase "$name"
    [[ ${3:-} == engines ]] && engines_cpu >"$RUN/$name/engines-cpu-before.txt"
    cpu0=$(cpu_s "$ALPES_PID")
    run_wrk alpes "$ALPES_URL" "$RUN/$name/tokens.txt" "$RUN/$name/log" 1 0 "$C" 3600 >/dev/null
    "$PY" "$HERE/analyze.py" wait "$RUN/$name/log" "$RUN/$name/events.tsv" --timeout 300 >&2 || true
    cpu1=$(cpu_s "$ALPES_PID")
    if [[ ${3:-} == engines ]]; then
        # Where the machine's CPU went: each engine's CPU time over the phase, per file.
        engines_cpu >"$RUN/$name/engines-cpu-after.txt"
        join "$RUN/$name/engines-cpu-before.txt" "$RUN/$name/engines-cpu-after.txt" |
            awk -v n="$N_FILES" -v a="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {print b - a}')" \
                '{ printf "%s %.2f ms/file (%.1f s)\n", $1, ($3 - $2) * 1000 / n, $3 - $2 }
                 END { printf "alpes %.2f ms/file (%.1f s)\n", a * 1000 / n, a }' >"$RESULTS/$name-cpu.txt"
        log "$name CPU per file: $(tr '\n' ',' <"$RESULTS/$name-cpu.txt")"
    fi
    rss=$(rss_kb "$ALPES_PID")
    sleep 1 # let the tail flush
    metrics_snapshot "$RESULTS/metrics-$name.txt"
    cp "$RUN/$name/log/wrk.stdout" "$RESULTS/wrk-$name.txt"
    cp "$RUN/$name/log/command.txt" "$RESULTS/command-$name.txt"
    "$PY" "$HERE/analyze.py" alpes "$RUN/$name/log" "$RUN/$name/events.tsv" "$RESULTS/$name.json" \
        --label "$name C=$C" --cpu-s "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f", b - a}')" \
        --extra "rss_after_kb=$rss" --extra "client_cpu_s=$(cat "$RUN/$name/log/wrk-cpu-s.txt")" >/dev/null
    ALPES_FPS[$name]=$(jget "$RESULTS/$name.json" pipeline_files_per_s)
    log "$name C=$C: $(jget "$RESULTS/$name.json" "f'{uploads_per_s} uploads/s, {pipeline_files_per_s} anonymized/s, upload p99 {upload_latency_ms.get(\"p99\")} ms, non-2xx {non_2xx}'"), rss $rss kB"
    warnings "$RUN/$name/stderr" "$RESULTS/$name-warnings.txt"
    stop_alpes
    phase idle
}

for C in $CONCURRENCY; do
    # Orthanc: every file POST /instances then POST /instances/{id}/anonymize, C clients.
    start_orthanc "orthanc-c$C"
    phase "orthanc-c$C"
    cpu0=$(cpu_s "$ORTHANC_PID")
    run_wrk orthanc "$ORTHANC_URL" - "$RUN/orthanc-c$C/log" 1 0 "$C" 3600 >/dev/null
    cpu1=$(cpu_s "$ORTHANC_PID")
    rss=$(rss_kb "$ORTHANC_PID")
    cp "$RUN/orthanc-c$C/log/wrk.stdout" "$RESULTS/wrk-orthanc-c$C.txt"
    cp "$RUN/orthanc-c$C/log/command.txt" "$RESULTS/command-orthanc-c$C.txt"
    "$PY" "$HERE/analyze.py" orthanc "$RUN/orthanc-c$C/log" "$RESULTS/orthanc-c$C.json" --label "orthanc C=$C" \
        --cpu-s "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f", b - a}')" \
        --extra "rss_after_kb=$rss" --extra "client_cpu_s=$(cat "$RUN/orthanc-c$C/log/wrk-cpu-s.txt")" >/dev/null
    ORTHANC_FPS[$C]=$(jget "$RESULTS/orthanc-c$C.json" pipeline_files_per_s)
    log "orthanc C=$C: ${ORTHANC_FPS[$C]} files/s, rss $rss kB"
    stop_orthanc_run
    phase idle

    # Alpes: every file POST /imagenes, C clients, then wait for every outcome on the topic;
    # on the mock, then (ENGINES_DIR) on the real engines.
    measure_alpes "alpes-c$C" "$C"
    if [[ -n ${ENGINES_DIR:-} ]]; then measure_alpes "alpes-engines-c$C" "$C" engines; fi
done

# paced_alpes NAME RATE SECONDS C [--minutes]: Alpes at a fixed upload rate, providers rotating per pass.
paced_alpes() {
    local name=$1 rate=$2 secs=$3 c=$4 minutes=${5:-}
    start_alpes "$name"
    local passes
    passes=$("$PY" -c "import math; print(math.ceil($rate * $secs / $N_FILES) + 2)")
    mint_tokens "$RUN/$name/data" "prov-$name" "$passes" "$RUN/$name/tokens.txt"
    sleep "$SAMPLE_S"
    phase "$name"
    metrics_snapshot "$RESULTS/metrics-$name-start.txt"
    ( sleep $((secs / 2 + 5)); metrics_snapshot "$RESULTS/metrics-$name-middle.txt" ) &
    local mid_pid=$! cpu0 cpu1 start_at end_at rss
    cpu0=$(cpu_s "$ALPES_PID")
    start_at=$(run_wrk alpes "$ALPES_URL" "$RUN/$name/tokens.txt" "$RUN/$name/log" 0 "$rate" "$c" "$secs")
    end_at=$(date +%s)
    metrics_snapshot "$RESULTS/metrics-$name-end.txt"
    phase "$name-drain"
    "$PY" "$HERE/analyze.py" wait "$RUN/$name/log" "$RUN/$name/events.tsv" --timeout 300 >&2 || true
    cpu1=$(cpu_s "$ALPES_PID")
    phase "$name-idle"
    sleep 20
    rss=$(rss_kb "$ALPES_PID")
    wait "$mid_pid" 2>/dev/null || true
    cp "$RUN/$name/log/wrk.stdout" "$RESULTS/wrk-$name.txt"
    cp "$RUN/$name/log/command.txt" "$RESULTS/command-$name.txt"
    # shellcheck disable=SC2086 # $minutes is an optional flag
    "$PY" "$HERE/analyze.py" alpes "$RUN/$name/log" "$RUN/$name/events.tsv" "$RESULTS/$name.json" \
        --label "alpes $name" --cpu-s "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f", b - a}')" $minutes \
        --extra "target_rate=$rate" --extra "concurrency=$c" --extra "seconds=$secs" \
        --extra "rss_idle_after_kb=$rss" --extra "client_cpu_s=$(cat "$RUN/$name/log/wrk-cpu-s.txt")" >/dev/null
    "$PY" "$HERE/analyze.py" rss "$RUN/samples.csv" "$start_at" "$end_at" "$RESULTS/$name-rss.json" >/dev/null
    warnings "$RUN/$name/stderr" "$RESULTS/$name-warnings.txt"
    du -sh "$RUN/$name/data" >"$RESULTS/$name-data-dir-size.txt" 2>/dev/null || true
    log "$name: $(jget "$RESULTS/$name.json" "f'{uploads_per_s} uploads/s (target {target_rate}), upload p50 {upload_latency_ms.get(\"p50\")} / p99 {upload_latency_ms.get(\"p99\")} ms, e2e p99 {e2e_ms.get(\"p99\")} ms, non-2xx {non_2xx}'")"
    stop_alpes
    phase idle
}

# ---------------------------------------------------------------- target load: 3 x Orthanc
last_c=${CONCURRENCY##* }
base=${ORTHANC_FPS[$SUSTAIN_C]:-${ORTHANC_FPS[$last_c]}}
TARGET_RATE=$("$PY" -c "print(round(3 * float('$base')))")
if ((TARGET_S > 0)); then
    log "target load: 3 x Orthanc's $base files/s = $TARGET_RATE uploads/s for $TARGET_S s, C=$SUSTAIN_C"
    paced_alpes target "$TARGET_RATE" "$TARGET_S" "$SUSTAIN_C"
fi

# ---------------------------------------------------------------- sustained run (memory)
if ((SUSTAIN_S > 0)); then
    if [[ $RATE == auto ]]; then
        # The target load when Alpes' measured pipeline can carry it, else 80 % of that capacity,
        # so that the run measures a steady state and not an ever-growing backlog.
        cap=0
        for C in $CONCURRENCY; do cap=$("$PY" -c "print(max(float('$cap'), float('${ALPES_FPS[alpes-c$C]:-0}')))"); done
        RATE=$("$PY" -c "print(min($TARGET_RATE, round(0.8 * $cap)) if $cap > 0 else $TARGET_RATE)")
        log "sustained rate: min(3 x Orthanc = $TARGET_RATE, 0.8 x Alpes capacity $cap) = $RATE uploads/s"
    fi
    paced_alpes sustained "$RATE" "$SUSTAIN_S" "$SUSTAIN_C" --minutes
fi

kill "$SAMPLER_PID" 2>/dev/null
SAMPLER_PID=
cp "$RUN/samples.csv" "$RESULTS/samples.csv"
"$PY" - "$RESULTS/meta.json" "$TARGET_RATE" "${RATE}" "$SUSTAIN_C" "$SUSTAIN_S" "$TARGET_S" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PYEOF'
import json, sys
p = sys.argv[1]; m = json.load(open(p))
m.update(target_rate=float(sys.argv[2]), sustained_rate=sys.argv[3], sustained_concurrency=int(sys.argv[4]),
         sustained_seconds=int(sys.argv[5]), target_seconds=int(sys.argv[6]), loadavg_after=sys.argv[7])
json.dump(m, open(p, "w"), indent=1)
PYEOF
"$PY" "$HERE/analyze.py" report "$RESULTS" | tee "$RESULTS/report.md"
log "results in $RESULTS (raw per-request logs in $RUN)"
