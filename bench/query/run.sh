#!/usr/bin/env bash
# Read-path load bench: Alpes `GET /imagenes/{id}` against Orthanc `GET /instances/{id}`,
# the same files loaded into both, both servers up for the whole run, measured one at a
# time in alternating rounds (A B A B ...), wrk as the client.
# See bench/query/README.md. One command: bench/query/run.sh
#
# Environment (defaults in brackets):
#   FILES         distinct corpus files loaded into both servers (0 = all 4,377) [1000]
#   CONNECTIONS   wrk connections (-c) [64]
#   THREADS       wrk threads (-t) [2]
#   DURATION_S    length of each measured wrk run, s [30]
#   WARMUP_S      an unmeasured wrk run of this length against the same server right before
#                 each measured one, s; 0 skips it [5]
#   ROUNDS        measured rounds; each round runs Alpes then Orthanc [3]
#   PAUSE_S       idle seconds before each wrk run (warm-up and measured) [2]
#   CHECK_STATUS  1: get.lua counts every response whose status is not 200 (costs client
#                 CPU: wrk hands each response to Lua); 0: wrk's own count of status > 399 [1]
#   PARALLEL      concurrent uploads while loading the servers (not timed) [4]
#   WAIT_S        longest wait for Alpes to anonymize the uploads, s [900]
#   WORK          scratch dir (data dirs, server logs, wrk output) [/tmp/alpes-query]
#   RESULTS       where the small result files go [bench/query/results/<UTC date-time>]
#   SKIP_BUILD=1  use target/release/alpes as it is
#   ALPES         the binary to test [target/release/alpes, copied into WORK first]
#   NO_INSTALL=1  do not apt-get / pip install anything
#   ALPES_UP_ARGS extra arguments for `alpes up` []
#   ORTHANC_THREADS  Orthanc's HttpThreadsCount [CONNECTIONS + 16: Orthanc's HTTP server
#                 holds one thread per keep-alive connection, so fewer threads than
#                 connections would leave connections unserved]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
HERE=bench/query
FILES=${FILES:-1000}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DURATION_S=${DURATION_S:-30}
WARMUP_S=${WARMUP_S:-5}
ROUNDS=${ROUNDS:-3}
PAUSE_S=${PAUSE_S:-2}
CHECK_STATUS=${CHECK_STATUS:-1}
PARALLEL=${PARALLEL:-4}
WAIT_S=${WAIT_S:-900}
WORK=${WORK:-/tmp/alpes-query}
STAMP=$(date -u +%Y-%m-%d-%H%M%S)
RESULTS=${RESULTS:-$HERE/results/$STAMP}
VENV=${VENV:-bench/.venv}
PY=$VENV/bin/python
CORPUS=${CORPUS:-bench/corpus/dicom}
ORTHANC_THREADS=${ORTHANC_THREADS:-$((CONNECTIONS + 16))}

# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh # log, die, free_port, cpu_s, rss_kb

# ---------------------------------------------------------------- install
if [[ -z ${NO_INSTALL:-} ]]; then
    apt_install_missing wrk:wrk Orthanc:orthanc
    ensure_corpus
fi
[[ -x $PY ]] || PY=python3 # the scripts here need only the standard library
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
command -v Orthanc >/dev/null || die "Orthanc is missing (apt-get install orthanc)"
[[ -d $CORPUS ]] || die "no corpus at $CORPUS (bench/.venv/bin/python bench/make_corpus.py)"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS ($CONNECTIONS) must be >= THREADS ($THREADS)"

# ---------------------------------------------------------------- build
mkdir -p "$WORK" "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
old=("${WORK:?}"/run-*)
[[ -e ${old[0]} ]] && rm -rf "${old[@]}" # the previous run's data dirs (disk space)
RUN=$WORK/run-$STAMP
mkdir -p "$RUN"
if [[ -z ${SKIP_BUILD:-} && -z ${ALPES:-} ]]; then
    log "cargo build --release -p alpes --locked"
    cargo build --release -p alpes --locked 2>&1 | tail -n 3 >&2
fi
SRC_BIN=${ALPES:-target/release/alpes}
[[ -x $SRC_BIN ]] || die "no Alpes binary at $SRC_BIN"
# A private copy: a concurrent `cargo build` must not swap the binary under the run.
mkdir -p "$RUN/bin"
cp "$SRC_BIN" "$RUN/bin/alpes"
ALPES_BIN=$RUN/bin/alpes
"$ALPES_BIN" up --help >/dev/null 2>&1 || die "$SRC_BIN has no 'up' subcommand (stale build?)"

find "$CORPUS" -type f -name '*.dcm' | LC_ALL=C sort >"$RUN/files.txt"
if ((FILES > 0)); then head -n "$FILES" "$RUN/files.txt" >"$RUN/f" && mv "$RUN/f" "$RUN/files.txt"; fi
log "corpus: $(wc -l <"$RUN/files.txt") files"

# ---------------------------------------------------------------- servers
ALPES_PID= ; ORTHANC_PID= ; WRK_PID= ; WRK_OUT=
cleanup() {
    set +e
    [[ -n $WRK_PID && -s $WRK_OUT.pid ]] && kill -INT "$(cat "$WRK_OUT.pid")" 2>/dev/null
    stop_alpes
    stop_orthanc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_alpes() {
    local dir=$RUN/alpes
    mkdir -p "$dir"
    # shellcheck disable=SC2086 # ALPES_UP_ARGS is a list of extra arguments
    "$ALPES_BIN" up --data-dir "$dir/data" --listen 127.0.0.1:0 ${ALPES_UP_ARGS:-} >"$dir/stdout" 2>"$dir/stderr" &
    ALPES_PID=$!
    for _ in $(seq 300); do
        grep -q 'kafka bootstrap' "$dir/stdout" 2>/dev/null && break
        kill -0 "$ALPES_PID" 2>/dev/null || die "alpes up exited: $(tail -5 "$dir/stderr")"
        sleep 0.1
    done
    ALPES_URL=$(sed -n 's/^alpes: listening on \(http[^ ]*\).*/\1/p' "$dir/stdout")
    [[ -n $ALPES_URL ]] || die "cannot parse alpes up output: $(cat "$dir/stdout")"
    curl -fsS "$ALPES_URL/health" >/dev/null || die "alpes /health failed"
    PROV_TOKEN=$("$ALPES_BIN" token --create-account --user bench-proveedor --role proveedor --data-dir "$dir/data" 2>/dev/null)
    CONS_TOKEN=$("$ALPES_BIN" token --create-account --user bench-consumidor --role consumidor --data-dir "$dir/data" 2>/dev/null)
    [[ -n $PROV_TOKEN && -n $CONS_TOKEN ]] || die "alpes token failed"
    log "alpes: pid $ALPES_PID, $ALPES_URL"
}
stop_alpes() {
    if [[ -n $ALPES_PID ]]; then
        kill -INT "$ALPES_PID" 2>/dev/null
        for _ in $(seq 300); do kill -0 "$ALPES_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$ALPES_PID" 2>/dev/null && { log "alpes did not stop in 30 s: SIGKILL"; kill -KILL "$ALPES_PID"; }
        wait "$ALPES_PID" 2>/dev/null
        ALPES_PID=
    fi
    return 0
}

start_orthanc() {
    # As bench/load's Orthanc, with one HTTP thread per keep-alive connection and then some.
    launch_orthanc "$RUN/orthanc" "$ORTHANC_THREADS"
    log "orthanc: pid $ORTHANC_PID, $ORTHANC_URL, HttpThreadsCount $ORTHANC_THREADS"
}

start_alpes
start_orthanc

# ---------------------------------------------------------------- load both (not timed)
log "loading $(wc -l <"$RUN/files.txt") files into both servers ($PARALLEL in parallel)"
"$PY" "$HERE/prepare.py" "$RUN/files.txt" "$RUN" --alpes "$ALPES_URL" --orthanc "$ORTHANC_URL" \
    --prov-token "$PROV_TOKEN" --cons-token "$CONS_TOKEN" --parallel "$PARALLEL" --wait-s "$WAIT_S" ||
    die "loading the servers failed (see $RUN/uploads.tsv)"
cp "$RUN/prepare.json" "$RESULTS/prepare.json"
N_IDS=$(wc -l <"$RUN/alpes-ids.txt")

# One sample response of each, as a reader sees it (headers and body size).
sample() { # NAME URL [curl args...]
    local name=$1 url=$2; shift 2
    curl -sS -D "$RESULTS/sample-$name.headers" -o "$RUN/sample-$name.body" "$@" "$url"
    wc -c <"$RUN/sample-$name.body" | tr -d ' ' >"$RESULTS/sample-$name.bytes"
    tr -d '\r' <"$RESULTS/sample-$name.headers" >"$RESULTS/sample-$name.h" && mv "$RESULTS/sample-$name.h" "$RESULTS/sample-$name.headers"
}
sample alpes "$ALPES_URL/imagenes/$(head -1 "$RUN/alpes-ids.txt")" -H "Authorization: Bearer $CONS_TOKEN"
sample orthanc "$ORTHANC_URL/instances/$(head -1 "$RUN/orthanc-ids.txt")"
log "sample bodies: alpes $(cat "$RESULTS/sample-alpes.bytes") B, orthanc $(cat "$RESULTS/sample-orthanc.bytes") B"

# ---------------------------------------------------------------- meta
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if git status --porcelain 2>/dev/null | grep -qv '^??'; then COMMIT="$COMMIT+uncommitted changes"; fi
cat >"$RESULTS/meta.json" <<EOF
{
 "date_utc": "$STAMP",
 "commit": "$COMMIT",
 "alpes_sha256": "$(sha256sum "$ALPES_BIN" | cut -c1-16)",
 "nproc": $(nproc),
 "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')",
 "mem_gib": $(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo),
 "kernel": "$(uname -r)",
 "loadavg_before": "$(cut -d' ' -f1-3 /proc/loadavg)",
 "wrk": "$(wrk -v 2>&1 | head -1 | cut -c1-60)",
 "orthanc": "$(Orthanc --version 2>&1 | head -1)",
 "orthanc_http_threads": $ORTHANC_THREADS,
 "files": $(wc -l <"$RUN/files.txt"),
 "ids": $N_IDS,
 "connections": $CONNECTIONS,
 "threads": $THREADS,
 "duration_s": $DURATION_S,
 "warmup_s": $WARMUP_S,
 "rounds": $ROUNDS,
 "check_status": $CHECK_STATUS,
 "alpes_up_args": "${ALPES_UP_ARGS:-}",
 "work_dir": "$RUN"
}
EOF
log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- measure
# run_wrk OUT SERVER SECONDS: one wrk run; OUT.stdout/.stderr/.cmd/.cpu (wrk's own CPU s,
# from `times` in the subshell that ran it: wrk is its only child).
run_wrk() {
    local out=$1 server=$2 secs=$3 url ids prefix token
    if [[ $server == alpes ]]; then
        url=$ALPES_URL ids=$RUN/alpes-ids.txt prefix=/imagenes/ token=$CONS_TOKEN
    else
        url=$ORTHANC_URL ids=$RUN/orthanc-ids.txt prefix=/instances/ token=-
    fi
    local cmd=(wrk -t "$THREADS" -c "$CONNECTIONS" -d "${secs}s" --timeout 10s --latency
        -s "$HERE/get.lua" "$url" -- "$ids" "$prefix" "$token" "$THREADS" "$CHECK_STATUS" "$server")
    # The token is long and says nothing: the recorded command line shows <token>.
    local shown=("${cmd[@]}")
    [[ $token == - ]] || shown[${#shown[@]}-4]='<consumer token>'
    echo "${shown[*]}" >"$out.cmd"
    WRK_OUT=$out
    (
        rc=0
        "${cmd[@]}" >"$out.stdout" 2>"$out.stderr" &
        echo $! >"$out.pid"
        wait $! || rc=$?
        times >"$out.times" # not in a pipeline: a forked `times` would report nothing
        exit "$rc"
    ) &
    WRK_PID=$!
    wait "$WRK_PID" || log "wrk exited $? ($(tail -2 "$out.stderr"))"
    WRK_PID=
    # `times`' second line: the children's (wrk's) user and system time, e.g. "0m12.34s 0m3.21s".
    tail -1 "$out.times" | awk '{ for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.2f\n", s }' >"$out.cpu"
    [[ -s $out.stderr ]] && log "wrk stderr: $(head -c 400 "$out.stderr")"
    grep -q '^BENCH ' "$out.stdout" || die "no BENCH line from wrk ($out.stdout)"
}

pid_of() { if [[ $1 == alpes ]]; then echo "$ALPES_PID"; else echo "$ORTHANC_PID"; fi; }
other() { if [[ $1 == alpes ]]; then echo orthanc; else echo alpes; fi; }

: >"$RESULTS/runs.jsonl"
mkdir -p "$RUN/wrk"
for round in $(seq 1 "$ROUNDS"); do
    for server in alpes orthanc; do
        pid=$(pid_of "$server"); opid=$(pid_of "$(other "$server")")
        kill -0 "$pid" 2>/dev/null || die "$server (pid $pid) is not running"
        if ((WARMUP_S > 0)); then
            sleep "$PAUSE_S"
            run_wrk "$RUN/wrk/$server-r$round-warmup" "$server" "$WARMUP_S"
        fi
        sleep "$PAUSE_S"
        out=$RUN/wrk/$server-r$round
        load=$(cut -d' ' -f1 /proc/loadavg)
        cpu0=$(cpu_s "$pid"); ocpu0=$(cpu_s "$opid")
        log "round $round/$ROUNDS: $server, $CONNECTIONS connections, ${DURATION_S}s"
        run_wrk "$out" "$server" "$DURATION_S"
        cpu1=$(cpu_s "$pid"); ocpu1=$(cpu_s "$opid")
        cp "$out.stdout" "$RESULTS/wrk-$server-r$round.txt"
        [[ $round == 1 ]] && cp "$out.cmd" "$RESULTS/command-$server.txt"
        "$PY" - "$out.stdout" "$server" "$round" "$cpu0" "$cpu1" "$ocpu0" "$ocpu1" "$(cat "$out.cpu")" \
            "$load" "$(rss_kb "$pid")" >>"$RESULTS/runs.jsonl" <<'PYEOF'
import json, sys
out, server, rnd, c0, c1, o0, o1, wrk_cpu, load, rss = sys.argv[1:]
line = next(l for l in open(out) if l.startswith("BENCH "))
d = json.loads(line[6:])
d.update(server=server, round=int(rnd), server_cpu_s=round(float(c1) - float(c0), 2),
         other_server_cpu_s=round(float(o1) - float(o0), 2), wrk_cpu_s=float(wrk_cpu),
         loadavg1_before=float(load), server_rss_kb=int(rss or 0))
print(json.dumps(d))
PYEOF
        log "  $("$PY" "$HERE/report.py" --last "$RESULTS")"
    done
done

# ---------------------------------------------------------------- after
"$PY" - "$RESULTS/meta.json" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PYEOF'
import json, sys
p = sys.argv[1]; m = json.load(open(p)); m["loadavg_after"] = sys.argv[2]
json.dump(m, open(p, "w"), indent=1)
PYEOF
curl -fsS "$ALPES_URL/metrics" 2>/dev/null | grep -v '^#' >"$RESULTS/metrics-alpes.txt" || true
{ printf 'WARN: %s  ERROR: %s\n' "$(grep -c '"level":"WARN"' "$RUN/alpes/stderr")" "$(grep -c '"level":"ERROR"' "$RUN/alpes/stderr")"
  grep '"level":"\(WARN\|ERROR\)"' "$RUN/alpes/stderr" | cut -c1-400 | head -20; } >"$RESULTS/alpes-warnings.txt" 2>/dev/null || true
stat -c '%s %n' "$RUN/alpes/stderr" "$RUN/orthanc/stderr" >"$RESULTS/server-log-bytes.txt"
stop_alpes
stop_orthanc
"$PY" "$HERE/report.py" "$RESULTS" | tee "$RESULTS/report.md"
log "results in $RESULTS (server logs, data dirs and wrk output in $RUN)"
