#!/usr/bin/env bash
# DICOMweb import throughput side by side: Alpes' importer (POST /importaciones,
# QIDO-RS then WADO-RS) vs. a second Orthanc's DICOMweb client (its plugin's
# POST /dicom-web/servers/{name}/retrieve), both pulling the same studies from
# the same source Orthanc, in one run.
#
# Usage:
#   bench/import/import_compare.sh [--count N] [--repeat N] [--only orthanc|alpes]
#
# Environment:
#   ALPES     Alpes binary (default target/release/alpes)
#   ORTHANC   Orthanc binary (default: Orthanc on PATH, else /usr/sbin/Orthanc; Debian package `orthanc`)
#   PLUGIN    DICOMweb plugin (default /usr/share/orthanc/plugins/libOrthancDicomWeb.so;
#             Debian package `orthanc-dicomweb`)
#   OUT_ROOT  scratch dir (default /tmp/alpes-bench-import); wiped at start
#   SOURCES   fixture files the instances are copied from (default CT_small and MR_small)
#   IMPORT_PER_HOST  Alpes' --import-max-per-host: its parallel requests to one source (default 8)
#   SERVICES  Alpes' --services when set (it must include importer); unset: the binary's
#             default (every service, the anonymizer competing for the same cores)
#   ORTHANC_PARALLEL  concurrent retrieve calls the Orthanc puller is given (default 1: what
#             one call of its client does; N splits the studies between N calls at once)
#   ORTHANC_SYNC  the Orthanc puller's SyncStorageArea (default false: like Alpes' default,
#             no fsync per file; true is Orthanc's own default)
#
# What is measured: wall time from the request until every instance is stored
# in the puller; instances/s is COUNT / wall; the median of REPEAT rounds is
# reported, runs alternating, each round with a fresh puller (fresh Alpes data
# dir, fresh Orthanc storage) so nothing is a duplicate. The source Orthanc
# (with the DICOMweb plugin) is loaded once with COUNT distinct instances
# (copies of the sources with new Study/Series/SOP Instance UIDs, 50 per study, each
# study copies of one source, made with dcmodify, sent with storescu) and
# serves every round.
#
# - Alpes: POST /importaciones {"tipo":"dicomweb","url":SOURCE,"consulta":{}}
#   (a provider's token), then GET /importaciones/{id} every 0.2 s until its
#   estado is completed, failed or cancelled; it must end completed with
#   conteos.importadas == COUNT. The importer runs the QIDO-RS study search
#   and the WADO-RS retrieves itself, with at most IMPORT_PER_HOST requests
#   at once to the source.
# - Orthanc: the wall covers a QIDO-RS study search through its client
#   (POST /dicom-web/servers/source/get {"Uri":"/studies"}) and then
#   POST /dicom-web/servers/source/retrieve {"Resources":[{"Study":UID},...]}.
#   That call is synchronous by default (it answers {"NetworkUsageMB":"..",
#   "ReceivedInstancesCount":".."} once done; "Asynchronous":true makes it a
#   job); the count is then checked with GET /statistics (CountInstances).
#   Parallelism: the plugin (1.7, Debian's) runs one retrieve as one job whose
#   single worker thread GETs the resources one after the other, one WADO-RS
#   request per study (a multipart answer, each part stored as it arrives):
#   ONE request at a time to the source. ORTHANC_PARALLEL=N gives it N
#   concurrent retrieve calls (the puller's ConcurrentJobs raised to match),
#   to compare at equal parallelism with IMPORT_PER_HOST.
# Everything binds and contacts 127.0.0.1 only.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
cd "$REPO_DIR"
# shellcheck source=../lib/common.sh
source "$BENCH_DIR/lib/common.sh"

COUNT=500
REPEAT=3
ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
case "$ONLY" in ""|orthanc|alpes) ;; *) echo "--only takes orthanc or alpes" >&2; exit 2 ;; esac

ALPES="${ALPES:-target/release/alpes}"
ORTHANC="${ORTHANC:-$(command -v Orthanc || { [ -x /usr/sbin/Orthanc ] && echo /usr/sbin/Orthanc; } || true)}"
PLUGIN="${PLUGIN:-/usr/share/orthanc/plugins/libOrthancDicomWeb.so}"
OUT_ROOT="${OUT_ROOT:-/tmp/alpes-bench-import}"
IMPORT_PER_HOST="${IMPORT_PER_HOST:-8}"
SERVICES="${SERVICES:-}"
ORTHANC_PARALLEL="${ORTHANC_PARALLEL:-1}"
ORTHANC_SYNC="${ORTHANC_SYNC:-false}"
FIXTURES="anonymizer/tests/fixtures/dicom"
SOURCES="${SOURCES:-$FIXTURES/CT_small.dcm $FIXTURES/MR_small.dcm}"

for tool in storescu dcmodify curl jq bc; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install dcmtk curl jq bc)" >&2; exit 1; }
done
[ -n "$ORTHANC" ] || { echo "Orthanc is missing: apt-get install orthanc" >&2; exit 1; }
[ -f "$PLUGIN" ] || { echo "no DICOMweb plugin at $PLUGIN: apt-get install orthanc-dicomweb" >&2; exit 1; }
if [ "$ONLY" != orthanc ]; then
  [ -x "$ALPES" ] || { echo "no Alpes binary at $ALPES: cargo build --release -p alpes (or --only orthanc)" >&2; exit 1; }
  if [ -n "$SERVICES" ] && [[ ",$SERVICES," != *,importer,* ]]; then
    echo "SERVICES=$SERVICES must include importer" >&2; exit 2
  fi
fi

rm -rf "$OUT_ROOT"
mkdir -p "$OUT_ROOT/instances"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# The instances: COUNT copies of the sources, each with a new SOP Instance UID, 50 per study.
# A study's 50 are copies of one source (the sources are of different patients, and Orthanc
# keys a study by patient and Study Instance UID: a study UID shared by two patients would be
# two studies for it).
echo "making $COUNT instances..." >&2
read -r -a src <<< "$SOURCES"
for i in $(seq 0 $((COUNT - 1))); do
  cp "${src[$((i / 50 % ${#src[@]}))]}" "$OUT_ROOT/instances/$(printf '%06d' "$i").dcm"
done
study=0
for start in $(seq 0 50 $((COUNT - 1))); do
  files=()
  for i in $(seq "$start" $((start + 49))); do
    [ "$i" -lt "$COUNT" ] && files+=("$OUT_ROOT/instances/$(printf '%06d' "$i").dcm")
  done
  study=$((study + 1))
  # New Study and Series Instance UIDs (one series per study, as a UID is unique in real data:
  # a series UID shared by ten studies is one series to a PACS) and new SOP Instance UIDs.
  dcmodify -nb -q -gin -m "(0020,000D)=2.25.$(date +%s%N)$study" -m "(0020,000E)=2.25.$(date +%s%N)9$study" "${files[@]}"
done
STUDIES=$study
BYTES=$(du -sb "$OUT_ROOT/instances" | cut -f1)

wait_http() { # $1: URL, $2: the server's pid, $3: its log; until the URL answers 2xx (30 s at most)
  for _ in $(seq 1 300); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "the server died before $1 answered:" >&2; tail -20 "$3" >&2; exit 1; }
    sleep 0.1
  done
  echo "nothing answers $1; see $3" >&2
  tail -20 "$3" >&2
  exit 1
}

# write_orthanc_config FILE NAME DIR HTTP DICOM EXTRA: an Orthanc with the DICOMweb plugin.
write_orthanc_config() {
  cat > "$1" <<JSON
{ "Name": "$2", "StorageDirectory": "$3", "IndexDirectory": "$3", "HttpPort": $4, "DicomPort": $5,
  "DicomAet": "ORTHANC", "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "DicomCheckCalledAet": false, "DicomAlwaysAllowStore": true, "StorageCompression": false,
  "Plugins": ["$PLUGIN"], $6 }
JSON
}

# The source: one Orthanc for the whole run, loaded once.
SRC_HTTP=$(free_port)
SRC_DICOM=$(free_port)
mkdir -p "$OUT_ROOT/source-db"
write_orthanc_config "$OUT_ROOT/source.json" source "$OUT_ROOT/source-db" "$SRC_HTTP" "$SRC_DICOM" \
  '"DicomWeb": { "Enable": true, "Root": "/dicom-web/" }'
"$ORTHANC" "$OUT_ROOT/source.json" > "$OUT_ROOT/source.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$SRC_HTTP/system" "${PIDS[-1]}" "$OUT_ROOT/source.log"
SOURCE_URL="http://127.0.0.1:$SRC_HTTP/dicom-web"
echo "loading the source Orthanc ($STUDIES studies)..." >&2
storescu -aet BENCHSCU -aec ORTHANC --scan-directories --required 127.0.0.1 "$SRC_DICOM" "$OUT_ROOT/instances" \
  > "$OUT_ROOT/load.log" 2>&1 || { tail -20 "$OUT_ROOT/load.log" >&2; exit 1; }
loaded=$(curl -fs "http://127.0.0.1:$SRC_HTTP/statistics" | jq -r .CountInstances)
[ "$loaded" = "$COUNT" ] || { echo "the source holds $loaded instances, not $COUNT" >&2; exit 1; }
[ "$(curl -fs "$SOURCE_URL/studies" | jq length)" = "$STUDIES" ] || { echo "the source's QIDO-RS does not list $STUDIES studies" >&2; exit 1; }

SERVER_PID=
stop_server() { [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }; SERVER_PID=; }

# The Orthanc puller: fresh storage, the source as its DICOMweb server "source"; sets WALL (seconds).
# (Run in this shell, not in $(...), so PIDS and SERVER_PID stay known to cleanup.)
pull_orthanc() {
  local db="$OUT_ROOT/puller-db" port dport jobs t0 t1 got
  rm -rf "$db"; mkdir -p "$db"
  port=$(free_port); dport=$(free_port)
  jobs=$(( ORTHANC_PARALLEL > 2 ? ORTHANC_PARALLEL : 2 ))
  write_orthanc_config "$OUT_ROOT/puller.json" puller "$db" "$port" "$dport" \
    "\"SyncStorageArea\": $ORTHANC_SYNC, \"ConcurrentJobs\": $jobs,
  \"DicomWeb\": { \"Enable\": true, \"Root\": \"/dicom-web/\", \"Servers\": { \"source\": [\"$SOURCE_URL/\"] } }"
  "$ORTHANC" "$OUT_ROOT/puller.json" > "$OUT_ROOT/puller.log" 2>&1 &
  PIDS+=($!); SERVER_PID=$!
  wait_http "http://127.0.0.1:$port/system" "$SERVER_PID" "$OUT_ROOT/puller.log"
  local base="http://127.0.0.1:$port/dicom-web/servers/source"
  t0=$(date +%s.%N)
  # QIDO-RS through the puller's client: the study UIDs, split into ORTHANC_PARALLEL retrieve bodies.
  curl -fsS -X POST "$base/get" -d '{"Uri":"/studies"}' > "$OUT_ROOT/qido.json"
  local callers=() p
  for p in $(seq 0 $((ORTHANC_PARALLEL - 1))); do
    jq -c --argjson n "$ORTHANC_PARALLEL" --argjson p "$p" \
      '{Resources: [to_entries[] | select(.key % $n == $p) | {Study: .value["0020000D"].Value[0]}]}' \
      "$OUT_ROOT/qido.json" > "$OUT_ROOT/retrieve.$p.json"
    curl -fsS -X POST "$base/retrieve" --data-binary "@$OUT_ROOT/retrieve.$p.json" > "$OUT_ROOT/retrieve.$p.out" 2>&1 &
    callers+=($!)
  done
  local failed=0
  for p in "${callers[@]}"; do wait "$p" || failed=1; done
  t1=$(date +%s.%N)
  got=$(curl -fs "http://127.0.0.1:$port/statistics" | jq -r .CountInstances)
  if [ "$failed" = 1 ] || [ "$got" != "$COUNT" ]; then
    echo "the Orthanc puller stored $got of $COUNT; see $OUT_ROOT/retrieve.*.out and $OUT_ROOT/puller.log" >&2
    cat "$OUT_ROOT"/retrieve.*.out >&2; tail -20 "$OUT_ROOT/puller.log" >&2
    exit 1
  fi
  stop_server
  WALL=$(echo "$t1 - $t0" | bc -l)
}

# The Alpes puller: a fresh data dir and provider account; sets WALL (seconds).
pull_alpes() {
  local data="$OUT_ROOT/alpes-data" port token job id state t0 t1
  rm -rf "$data"
  token=$("$ALPES" token --user bench-import --role proveedor --create-account --data-dir "$data")
  port=$(free_port)
  local svc=()
  [ -n "$SERVICES" ] && svc=(--services "$SERVICES")
  ALPES_LOG=warn "$ALPES" up --data-dir "$data" "${svc[@]}" --listen "127.0.0.1:$port" \
    --dimse-listen 127.0.0.1:0 --import-allow-network 127.0.0.0/8 --import-max-per-host "$IMPORT_PER_HOST" \
    > "$OUT_ROOT/alpes.log" 2>&1 &
  PIDS+=($!); SERVER_PID=$!
  # Until /ready answers 200, consumers (the importer's among them) are still joining.
  wait_http "http://127.0.0.1:$port/ready" "$SERVER_PID" "$OUT_ROOT/alpes.log"
  local api="http://127.0.0.1:$port"
  t0=$(date +%s.%N)
  job=$(curl -fsS -X POST "$api/importaciones" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"tipo\":\"dicomweb\",\"url\":\"$SOURCE_URL\",\"consulta\":{}}")
  id=$(jq -r .id <<< "$job")
  [ -n "$id" ] && [ "$id" != null ] || { echo "POST /importaciones answered: $job" >&2; exit 1; }
  while :; do
    job=$(curl -fsS "$api/importaciones/$id" -H "authorization: Bearer $token")
    state=$(jq -r .estado <<< "$job")
    case "$state" in completed|failed|cancelled) break ;; esac
    sleep 0.2
  done
  t1=$(date +%s.%N)
  if [ "$state" != completed ] || [ "$(jq -r .conteos.importadas <<< "$job")" != "$COUNT" ]; then
    echo "the Alpes import ended $state, not completed with $COUNT importadas: $job" >&2
    tail -20 "$OUT_ROOT/alpes.log" >&2
    exit 1
  fi
  echo "$job" > "$OUT_ROOT/alpes-last-job.json"
  stop_server
  WALL=$(echo "$t1 - $t0" | bc -l)
}

LABEL_O="Orthanc DICOMweb client ($ORTHANC_PARALLEL retrieve call(s), one WADO-RS request each at a time)"
LABEL_A="Alpes importer (--import-max-per-host $IMPORT_PER_HOST)"
WALLS_O=()
WALLS_A=()
for r in $(seq 1 "$REPEAT"); do
  echo "round $r" >&2
  if [ "$ONLY" != alpes ]; then
    pull_orthanc; w=$WALL; WALLS_O+=("$w")
    printf '%-40s %8.2f s  %8.1f instances/s\n' Orthanc "$w" "$(echo "$COUNT / $w" | bc -l)" >&2
  fi
  if [ "$ONLY" != orthanc ]; then
    pull_alpes; w=$WALL; WALLS_A+=("$w")
    printf '%-40s %8.2f s  %8.1f instances/s\n' Alpes "$w" "$(echo "$COUNT / $w" | bc -l)" >&2
  fi
done

rate_of() { [ -n "$1" ] && echo "$COUNT / $1" | bc -l || echo ""; }
MED_O=; MED_A=
[ ${#WALLS_O[@]} -gt 0 ] && MED_O=$(median "${WALLS_O[@]}")
[ ${#WALLS_A[@]} -gt 0 ] && MED_A=$(median "${WALLS_A[@]}")
RATE_O=$(rate_of "$MED_O"); RATE_A=$(rate_of "$MED_A")
fmt() { [ -n "$1" ] && printf "%.${2:-1}f" "$1" || printf 'not run'; }
OUT="bench/results/import-compare-$(date -u +%Y-%m-%d-%H%M%S).md"
{
  echo "# DICOMweb import throughput: Alpes vs. Orthanc ($(date -u +%Y-%m-%d))"
  echo
  echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- instances: $COUNT in $STUDIES studies ($BYTES bytes; copies of: $SOURCES; new Study/Series/SOP Instance UIDs, 50 per study, each study copies of one source), served by a source Orthanc with the DICOMweb plugin"
  echo "- Orthanc: $("$ORTHANC" --version 2>&1 | head -1), plugin $(basename "$(readlink -f "$PLUGIN")"); puller SyncStorageArea=$ORTHANC_SYNC$( [ "$ONLY" != orthanc ] && echo "; Alpes: $("$ALPES" --version 2>&1 | head -1), services: ${SERVICES:-default}")"
  echo "- parallel requests to the source: Orthanc $ORTHANC_PARALLEL (one per retrieve call; the plugin's client fetches a call's studies one after the other), Alpes up to $IMPORT_PER_HOST (--import-max-per-host)"
  echo "- command: IMPORT_PER_HOST=$IMPORT_PER_HOST ORTHANC_PARALLEL=$ORTHANC_PARALLEL ORTHANC_SYNC=$ORTHANC_SYNC${SERVICES:+ SERVICES=$SERVICES} bench/import/import_compare.sh --count $COUNT --repeat $REPEAT${ONLY:+ --only $ONLY}"
  echo
  echo "| Alpes instances/s | Orthanc instances/s | ratio (Alpes / Orthanc) |"
  echo "|---:|---:|---:|"
  if [ -n "$RATE_A" ] && [ -n "$RATE_O" ]; then ratio=$(fmt "$(echo "$RATE_A / $RATE_O" | bc -l)" 2); else ratio="n/a"; fi
  echo "| $(fmt "$RATE_A") | $(fmt "$RATE_O") | $ratio |"
  echo
  echo "| puller | median wall (s) | instances/s | runs (s) |"
  echo "|---|---:|---:|---|"
  [ -n "$MED_A" ] && printf '| %s | %.2f | %.1f | %s |\n' "$LABEL_A" "$MED_A" "$RATE_A" "${WALLS_A[*]}"
  [ -n "$MED_O" ] && printf '| %s | %.2f | %.1f | %s |\n' "$LABEL_O" "$MED_O" "$RATE_O" "${WALLS_O[*]}"
  true
} > "$OUT"
cat "$OUT"
echo "written to $OUT" >&2
