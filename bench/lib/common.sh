# Shell helpers shared by the benches (bench/load/run.sh, bench/query/run.sh, bench/kafka/*.sh).
# Source it after `set -euo pipefail`; it defines functions and CLK_TCK only, and
# runs nothing else. free_port uses $PY when set (the bench venv), else python3.
# shellcheck shell=bash

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

CLK_TCK=$(getconf CLK_TCK)
# A TCP port free on 127.0.0.1 right now.
free_port() { "${PY:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_s() { # utime+stime of a pid, seconds
    awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
rss_kb() { ps -o rss= -p "$1" 2>/dev/null | tr -d ' ' || true; }
# payload_file FILE N SIZE: N lines of SIZE random base32 characters ([A-Z2-7]) in FILE,
# made once (the producer benches' records; both clients of a run read the same file).
payload_file() {
    local file=$1 n=$2 size=$3
    if [ ! -s "$file" ]; then
        head -c $(( n * size * 5 / 8 + size )) /dev/urandom | base32 -w "$size" | head -n "$n" >"$file"
    fi
    [ "$(wc -l <"$file")" -eq "$n" ] || die "bad records file $file"
}
# median X...: the median of the numbers.
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# now: the time, in seconds with nanoseconds. rate N T0 T1: N / (T1 - T0), rounded (records/s).
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f\n", n / (b - a) }'; }

# apt_install_missing CMD:PACKAGE...: installs (apt-get) the packages whose command is missing.
apt_install_missing() {
    local missing=() pair
    for pair in "$@"; do command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}"); done
    ((${#missing[@]})) || return 0
    log "apt-get install ${missing[*]}"
    local SUDO=
    [[ $(id -u) == 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_corpus: builds the bench corpus at $CORPUS (bench/make_corpus.py, pydicom in $VENV) unless it exists.
ensure_corpus() {
    [[ -d $CORPUS ]] && return 0
    [[ -x $PY ]] || python3 -m venv "$VENV"
    "$PY" -c 'import pydicom' 2>/dev/null || "$VENV/bin/pip" install -q pydicom==3.0.2
    log "building the corpus (bench/make_corpus.py)"
    "$PY" bench/make_corpus.py
}

# launch_orthanc DIR THREADS: Orthanc with its storage and SQLite index in DIR (no compression,
# no plugins, no DICOM server, THREADS HTTP threads) on a free port; sets ORTHANC_PID,
# ORTHANC_PORT and ORTHANC_URL and returns once /system answers (saved in DIR/system.json).
launch_orthanc() {
    local dir=$1 threads=$2
    mkdir -p "$dir/storage" "$dir/index"
    ORTHANC_PORT=$(free_port)
    cat >"$dir/orthanc.json" <<EOF
{
  "Name": "alpes-bench",
  "StorageDirectory": "$dir/storage",
  "IndexDirectory": "$dir/index",
  "StorageCompression": false,
  "HttpServerEnabled": true,
  "HttpPort": $ORTHANC_PORT,
  "DicomServerEnabled": false,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "HttpThreadsCount": $threads,
  "KeepAlive": true,
  "TcpNoDelay": true,
  "HttpTimeout": 60,
  "SaveJobs": false,
  "Plugins": []
}
EOF
    Orthanc "$dir/orthanc.json" >"$dir/stdout" 2>"$dir/stderr" &
    ORTHANC_PID=$!
    ORTHANC_URL=http://127.0.0.1:$ORTHANC_PORT
    for _ in $(seq 300); do
        curl -fsS "$ORTHANC_URL/system" >/dev/null 2>&1 && break
        kill -0 "$ORTHANC_PID" 2>/dev/null || die "Orthanc exited: $(tail -5 "$dir/stderr")"
        sleep 0.1
    done
    curl -fsS "$ORTHANC_URL/system" >"$dir/system.json" || die "Orthanc /system failed"
}

# stop_orthanc: stops the Orthanc launch_orthanc started (TERM, then KILL after 30 s).
stop_orthanc() {
    if [[ -n ${ORTHANC_PID:-} ]]; then
        kill -TERM "$ORTHANC_PID" 2>/dev/null
        for _ in $(seq 300); do kill -0 "$ORTHANC_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$ORTHANC_PID" 2>/dev/null && kill -KILL "$ORTHANC_PID"
        wait "$ORTHANC_PID" 2>/dev/null
        ORTHANC_PID=
    fi
    return 0
}
