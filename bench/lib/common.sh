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
