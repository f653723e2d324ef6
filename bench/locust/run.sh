#!/usr/bin/env bash
# Issue 20: the consent workflow's flows (patient registration + validation, upload,
# download) driven by Locust and by wrk against a fresh `alpes up`, side by side.
# One command: bench/locust/run.sh   (see bench/locust/README.md)
#
# Environment (defaults in brackets):
#   USERS        concurrent users (Locust -u = wrk -t -c), space-separated ["8 32"]
#   DURATION     seconds of each run [60]
#   FLOWS        which flows, in this order ["registration download upload"] (upload last:
#                its anonymization backlog is waited out before any later run anyway)
#   TOOLS        ["locust wrk"]
#   IMAGES       images pre-uploaded (and anonymized) for the download flow [200]
#   WORK         scratch dir: data dir, server log, raw per-request logs [/tmp/alpes-locust]
#   RESULT       the report [bench/results/locust-<UTC date-time>.md]
#   SKIP_BUILD=1 use the binary as it is; ALPES: the binary [$CARGO_TARGET_DIR or target, /release/alpes]
#   NO_INSTALL=1 do not apt-get / pip install anything
#   QUIET_MAX_S  longest wait for the server to go idle before a run [600]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
HERE=bench/locust
USERS=${USERS:-"8 32"}
DURATION=${DURATION:-60}
FLOWS=${FLOWS:-"registration download upload"}
TOOLS=${TOOLS:-"locust wrk"}
IMAGES=${IMAGES:-200}
WORK=${WORK:-/tmp/alpes-locust}
QUIET_MAX_S=${QUIET_MAX_S:-600}
STAMP=$(date -u +%Y-%m-%d-%H%M%S)
RESULT=${RESULT:-bench/results/locust-$STAMP.md}
VENV=$HERE/.venv
PY=$VENV/bin/python
LOCUST_VERSION=$(sed -n 's/^locust==//p' "$HERE/requirements.txt")

# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh # log, die, free_port, cpu_s, apt_install_missing
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in bench/locust

# ---------------------------------------------------------------- install
if [[ -z ${NO_INSTALL:-} ]]; then
    apt_install_missing wrk:wrk /usr/bin/time:time
    [[ -x $PY ]] || python3 -m venv "$VENV"
    [[ $("$VENV/bin/locust" --version 2>/dev/null) == "locust $LOCUST_VERSION "* ]] ||
        "$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
fi
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
[[ -x $VENV/bin/locust ]] || die "no locust in $VENV (pip install -r $HERE/requirements.txt)"

# ---------------------------------------------------------------- build
if [[ -z ${SKIP_BUILD:-} && -z ${ALPES:-} ]]; then
    log "cargo build --release -p alpes --locked"
    cargo build --release -p alpes --locked 2>&1 | tail -n 3 >&2
fi
SRC_BIN=${ALPES:-${CARGO_TARGET_DIR:-target}/release/alpes}
[[ -x $SRC_BIN ]] || die "no Alpes binary at $SRC_BIN"
mkdir -p "$WORK"
rm -rf "${WORK:?}"/run-*
RUN=$WORK/run-$STAMP
mkdir -p "$RUN" "$(dirname "$RESULT")"
cp "$SRC_BIN" "$RUN/alpes" # a private copy: a concurrent build cannot swap it mid-run
BIN=$RUN/alpes

# ---------------------------------------------------------------- server
export ALPES_BOOTSTRAP_ADMIN_EMAIL=admin@bench.example
export ALPES_BOOTSTRAP_ADMIN_PASSWORD=bench-admin-password-0123
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
# Access tokens last 2 h (default 15 min): the setup's tokens serve every run. The DICOM
# listener gets a free port too (its default, 11112, may be taken by another instance).
UP_CMD=("$BIN" up --data-dir "$RUN/data" --listen "127.0.0.1:$PORT" --dimse-listen "127.0.0.1:$(free_port)"
    --access-ttl-secs 7200)
ALPES_PID=
stop_alpes() {
    [[ -n $ALPES_PID ]] || return 0
    kill -TERM "$ALPES_PID" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$ALPES_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$ALPES_PID" 2>/dev/null && kill -KILL "$ALPES_PID"
    wait "$ALPES_PID" 2>/dev/null || true
    ALPES_PID=
}
trap stop_alpes EXIT
trap 'exit 130' INT TERM
"${UP_CMD[@]}" >"$RUN/alpes.log" 2>&1 &
ALPES_PID=$!
for _ in $(seq 600); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$URL/ready") == 200 ]] && break
    kill -0 "$ALPES_PID" 2>/dev/null || die "alpes up exited: $(tail -5 "$RUN/alpes.log")"
    sleep 0.1
done
[[ $(curl -s -o /dev/null -w '%{http_code}' "$URL/ready") == 200 ]] || die "alpes never became ready"
log "alpes up on $URL (pid $ALPES_PID, data $RUN/data)"

# ---------------------------------------------------------------- setup
export ALPES_BENCH_SETUP=$RUN/setup.json
"$PY" "$HERE/setup.py" "$URL" "$RUN" --images "$IMAGES"
# The same ids and tokens as Lua, for flows.lua.
"$PY" - "$RUN/setup.json" "$RUN/setup.lua" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
v = {"ct_path": s["ct_path"], "institucion_id": s["registration"]["institucion_id"],
     "medico_id": s["registration"]["medico_id"], "provider_token": s["registration"]["provider_token"],
     "medico_token": s["registration"]["medico_token"], "upload_token": s["upload"]["provider_token"],
     "consumer_token": s["download"]["consumer_token"]}
with open(sys.argv[2], "w") as f:
    f.write("return {\n" + "".join(f"  {k} = {json.dumps(x)},\n" for k, x in v.items()) + "}\n")
PYEOF

# quiet: waits until the server used under 10 % of a core over 2 s (the anonymizer has
# drained an upload run's backlog); prints the seconds waited.
quiet() {
    local t0 a b
    t0=$(date +%s)
    while :; do
        a=$(cpu_s "$ALPES_PID"); sleep 2; b=$(cpu_s "$ALPES_PID")
        awk -v a="$a" -v b="$b" 'BEGIN { exit !(b - a < 0.2) }' && break
        (($(date +%s) - t0 < QUIET_MAX_S)) || { log "server still busy after ${QUIET_MAX_S}s; going on"; break; }
    done
    echo $(($(date +%s) - t0))
}

# busy_s: CPU seconds the whole machine has been busy (all cores, /proc/stat: user, nice,
# system, irq, softirq); over a run, minus the server's and the client's, what other processes took.
busy_s() { awk -v t="$CLK_TCK" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / t; exit }' /proc/stat; }

cut -d' ' -f1-3 /proc/loadavg >"$RUN/loadavg-before"
declare -A CLASS=([registration]=RegistrationUser [upload]=UploadUser [download]=DownloadUser)
: >"$RUN/runs.jsonl"
for flow in $FLOWS; do
    for u in $USERS; do
        for tool in $TOOLS; do
            name=$tool-$flow-u$u
            waited=$(quiet)
            label=$flow$u
            srv0=$(cpu_s "$ALPES_PID")
            busy0=$(busy_s)
            if [[ $tool == locust ]]; then
                cmd=("$VENV/bin/locust" -f "$HERE/locustfile.py" --headless -u "$u" -r "$u" -t "${DURATION}s"
                    --csv "$RUN/$name" --only-summary "${CLASS[$flow]}")
                log "$name: ${cmd[*]}"
                ALPES_BENCH_RUN=$label ALPES_BENCH_STATS=$RUN/$name-final.json /usr/bin/time -f '%U %S %e' -o "$RUN/$name.time" \
                    "${cmd[@]}" >"$RUN/$name.stdout" 2>"$RUN/$name.stderr" || true
            else
                mkdir -p "$RUN/$name"
                cmd=(wrk -t "$u" -c "$u" -d "${DURATION}s" --timeout 60s -s "$HERE/flows.lua" "$URL" --
                    "$flow" "$RUN" "$RUN/$name" "$label")
                log "$name: ${cmd[*]}"
                /usr/bin/time -f '%U %S %e' -o "$RUN/$name.time" \
                    "${cmd[@]}" >"$RUN/$name.stdout" 2>"$RUN/$name.stderr" || true
            fi
            srv1=$(cpu_s "$ALPES_PID")
            busy1=$(busy_s)
            read -r cu cs wall <"$RUN/$name.time" || die "$name: no timing ($(tail -3 "$RUN/$name.stderr"))"
            printf '{"tool":"%s","flow":"%s","users":%d,"duration":%d,"name":"%s","client_user_s":%s,"client_sys_s":%s,"wall_s":%s,"server_cpu_s":%s,"machine_busy_s":%s,"quiet_wait_s":%d,"command":%s}\n' \
                "$tool" "$flow" "$u" "$DURATION" "$name" "$cu" "$cs" "$wall" \
                "$(awk -v a="$srv0" -v b="$srv1" 'BEGIN {printf "%.2f", b - a}')" \
                "$(awk -v a="$busy0" -v b="$busy1" 'BEGIN {printf "%.2f", b - a}')" "$waited" \
                "$("$PY" -c 'import json, sys; print(json.dumps(" ".join(sys.argv[1:])))' "${cmd[@]}")" >>"$RUN/runs.jsonl"
            "$PY" "$HERE/report.py" one "$RUN" "$name" >&2 || true
        done
    done
done
drain=$(quiet)
log "server idle again after ${drain}s"
cut -d' ' -f1-3 /proc/loadavg >"$RUN/loadavg-after"

# ---------------------------------------------------------------- report
grep -E ' (WARN|ERROR) ' "$RUN/alpes.log" >"$RUN/alpes-warnings.txt" || true
"$PY" "$HERE/report.py" report "$RUN" --stamp "$STAMP" --server-cmd "${UP_CMD[*]}" \
    --setup-cmd "$PY $HERE/setup.py $URL $RUN --images $IMAGES" >"$RESULT"
stop_alpes
log "report: $RESULT (raw logs in $RUN)"
cat "$RESULT"
