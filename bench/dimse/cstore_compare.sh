#!/usr/bin/env bash
# C-STORE throughput side by side: Alpes' DICOM listener vs. Orthanc's own, the
# same instances sent by the same client (dcmtk's storescu), in one run.
#
# Usage:
#   bench/dimse/cstore_compare.sh [--count N] [--repeat N] [--parallel N]
#
# Environment:
#   ALPES     Alpes binary (default target/release/alpes)
#   ORTHANC   Orthanc binary (default: Orthanc on PATH; Debian package `orthanc`)
#   OUT_ROOT  scratch dir (default /tmp/alpes-bench-dimse); wiped at start
#   SOURCES   fixture files the instances are copied from (default CT_small and MR_small)
#   TCP_NODELAY  passed to storescu (default 1: dcmtk then turns Nagle's algorithm off;
#             with it on, every C-STORE waits out a 40 ms delayed ACK and the run
#             measures that, not the listeners: TCP_NODELAY=0 shows it)
#
# What is measured: wall time from storescu's start to its exit, sending COUNT
# distinct instances (copies of the sources with new Study/SOP Instance UIDs,
# 50 instances per study, made once with dcmodify) over one association, then
# over PARALLEL associations at once (the files split between PARALLEL storescu
# processes). A C-STORE is answered by Alpes once the raw blob is stored, the
# image claimed in the store and ImagenRegistrada acknowledged by the broker
# (here the in-process development broker); by Orthanc once the file and its
# index row are written. Durability is compared like for like: Orthanc's
# default flushes each file to disk (SyncStorageArea), as Alpes does with
# --fsync; Orthanc with SyncStorageArea=false against Alpes' default (the
# operating system has the bytes: they survive a crash of the process). Alpes
# runs the ingest and dimse services (what answers a C-STORE), and then the
# whole platform (the anonymizer competing for the same cores). Both listeners
# take PDUs of up to 128 KiB. Every run must
# store every instance (storescu's success count is checked); instances/s is
# COUNT / wall; the median of REPEAT rounds is reported, runs alternating.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
cd "$REPO_DIR"

COUNT=500
REPEAT=3
PARALLEL=4
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --parallel) PARALLEL="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ALPES="${ALPES:-target/release/alpes}"
ORTHANC="${ORTHANC:-$(command -v Orthanc || true)}"
OUT_ROOT="${OUT_ROOT:-/tmp/alpes-bench-dimse}"
export TCP_NODELAY="${TCP_NODELAY:-1}"
FIXTURES="anonymizer/tests/fixtures/dicom"
SOURCES="${SOURCES:-$FIXTURES/CT_small.dcm $FIXTURES/MR_small.dcm}"

for tool in storescu dcmodify; do
  command -v "$tool" >/dev/null || { echo "dcmtk's $tool is missing: apt-get install dcmtk" >&2; exit 1; }
done
[ -x "$ALPES" ] || { echo "no Alpes binary at $ALPES: cargo build --release -p alpes" >&2; exit 1; }
[ -n "$ORTHANC" ] || { echo "Orthanc is missing: apt-get install orthanc" >&2; exit 1; }

rm -rf "$OUT_ROOT"
mkdir -p "$OUT_ROOT/instances"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# The instances: COUNT copies of the sources, each with a new SOP Instance UID, 50 per study.
echo "making $COUNT instances..." >&2
read -r -a src <<< "$SOURCES"
for i in $(seq 0 $((COUNT - 1))); do
  cp "${src[$((i % ${#src[@]}))]}" "$OUT_ROOT/instances/$(printf '%06d' "$i").dcm"
done
study=0
for start in $(seq 0 50 $((COUNT - 1))); do
  files=()
  for i in $(seq "$start" $((start + 49))); do
    [ "$i" -lt "$COUNT" ] && files+=("$OUT_ROOT/instances/$(printf '%06d' "$i").dcm")
  done
  study=$((study + 1))
  dcmodify -nb -q -gin -m "(0020,000D)=2.25.$(date +%s%N)$study" "${files[@]}"
done
BYTES=$(du -sb "$OUT_ROOT/instances" | cut -f1)

# The parallel split: PARALLEL directories of links.
for p in $(seq 1 "$PARALLEL"); do mkdir -p "$OUT_ROOT/split/$p"; done
n=0
for f in "$OUT_ROOT"/instances/*.dcm; do
  ln -s "$f" "$OUT_ROOT/split/$((n % PARALLEL + 1))/$(basename "$f")"
  n=$((n + 1))
done

wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

start_alpes() { # $1: services, $2: extra flag (e.g. --fsync)
  local data="$OUT_ROOT/alpes-data"
  rm -rf "$data"
  "$ALPES" token --user bench-dimse --role proveedor --create-account --data-dir "$data" >/dev/null
  ALPES_LOG=warn "$ALPES" up --data-dir "$data" --services "$1" --listen 127.0.0.1:18080 \
    --dimse-listen 127.0.0.1:11112 --dimse-calling-ae BENCHSCU=bench-dimse --dimse-max-pdu 131072 ${2:-} \
    > "$OUT_ROOT/alpes.log" 2>&1 &
  PIDS+=($!)
  SERVER_PID=$!
  wait_port 11112
  # Until /ready answers 200, consumers are still joining.
  for _ in $(seq 1 300); do
    curl -fs http://127.0.0.1:18080/ready >/dev/null 2>&1 && return 0
    sleep 0.1
  done
}

start_orthanc() { # $1: SyncStorageArea (true, Orthanc's default: each file flushed to disk)
  local db="$OUT_ROOT/orthanc-db"
  rm -rf "$db"
  mkdir -p "$db"
  cat > "$OUT_ROOT/orthanc.json" <<JSON
{ "Name": "bench", "StorageDirectory": "$db", "IndexDirectory": "$db", "DicomAet": "ORTHANC",
  "DicomPort": 4242, "HttpPort": 18042, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "DicomCheckCalledAet": false, "DicomAlwaysAllowStore": true, "MaximumPduLength": 131072,
  "StorageCompression": false, "SyncStorageArea": ${1:-true}, "Plugins": [] }
JSON
  "$ORTHANC" "$OUT_ROOT/orthanc.json" > "$OUT_ROOT/orthanc.log" 2>&1 &
  PIDS+=($!)
  SERVER_PID=$!
  wait_port 4242
}

stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }

send() { # $1: called AE, $2: port, $3: parallel (1 or PARALLEL); prints the wall seconds
  local t0 t1 ok
  t0=$(date +%s.%N)
  if [ "$3" = 1 ]; then
    storescu -aet BENCHSCU -aec "$1" -v --scan-directories --required 127.0.0.1 "$2" "$OUT_ROOT/instances" > "$OUT_ROOT/send.log" 2>&1 || true
  else
    : > "$OUT_ROOT/send.log"
    local senders=()
    for p in $(seq 1 "$3"); do
      storescu -aet BENCHSCU -aec "$1" -v --scan-directories --required 127.0.0.1 "$2" "$OUT_ROOT/split/$p" > "$OUT_ROOT/send.log.$p" 2>&1 &
      senders+=($!)
    done
    for j in "${senders[@]}"; do wait "$j" || true; done
    cat "$OUT_ROOT"/send.log.* >> "$OUT_ROOT/send.log"; rm -f "$OUT_ROOT"/send.log.*
  fi
  t1=$(date +%s.%N)
  ok=$(grep -c "Received Store Response (Success)" "$OUT_ROOT/send.log" || true)
  if [ "$ok" != "$COUNT" ]; then
    echo "only $ok of $COUNT stored ($1); see $OUT_ROOT/send.log" >&2
    tail -20 "$OUT_ROOT/send.log" >&2
    exit 1
  fi
  echo "$t1 - $t0" | bc -l
}

declare -A WALLS
run() { # $1: label, $2: start function and args, $3: AE, $4: port, $5: parallel
  $2
  local wall
  wall=$(send "$3" "$4" "$5")
  stop_server
  WALLS[$1]="${WALLS[$1]:-} $wall"
  printf '%-40s %8.2f s  %8.1f instances/s\n' "$1" "$wall" "$(echo "$COUNT / $wall" | bc -l)" >&2
}

LABELS=(
  "Orthanc (defaults: each file flushed) 1 association"
  "Alpes --fsync 1 association"
  "Orthanc SyncStorageArea=false 1 association"
  "Alpes (defaults) 1 association"
  "Orthanc SyncStorageArea=false $PARALLEL associations"
  "Alpes (defaults) $PARALLEL associations"
  "Alpes whole platform $PARALLEL associations"
)
for r in $(seq 1 "$REPEAT"); do
  echo "round $r" >&2
  run "${LABELS[0]}" "start_orthanc true" ORTHANC 4242 1
  run "${LABELS[1]}" "start_alpes ingest,dimse --fsync" ALPES 11112 1
  run "${LABELS[2]}" "start_orthanc false" ORTHANC 4242 1
  run "${LABELS[3]}" "start_alpes ingest,dimse" ALPES 11112 1
  run "${LABELS[4]}" "start_orthanc false" ORTHANC 4242 "$PARALLEL"
  run "${LABELS[5]}" "start_alpes ingest,dimse" ALPES 11112 "$PARALLEL"
  run "${LABELS[6]}" "start_alpes ingest,anonymizer,billing,query-api,dimse" ALPES 11112 "$PARALLEL"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
OUT="bench/results/dimse-cstore-$(date -u +%Y-%m-%d-%H%M%S).md"
{
  echo "# C-STORE throughput: Alpes vs. Orthanc ($(date -u +%Y-%m-%d))"
  echo
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
  echo "- instances: $COUNT ($BYTES bytes; copies of: $SOURCES; new SOP Instance UIDs, 50 per study), Explicit VR Little Endian"
  echo "- client: $(storescu --version 2>&1 | head -1); Orthanc: $("$ORTHANC" --version 2>&1 | head -1); Alpes: $("$ALPES" --version 2>&1 | head -1)"
  echo "- command: TCP_NODELAY=$TCP_NODELAY bench/dimse/cstore_compare.sh --count $COUNT --repeat $REPEAT --parallel $PARALLEL"
  echo
  echo "| listener | median wall (s) | instances/s | runs (s) |"
  echo "|---|---:|---:|---|"
  for label in "${LABELS[@]}"; do
    m=$(echo "${WALLS[$label]}" | median)
    printf '| %s | %.2f | %.1f | %s |\n' "$label" "$m" "$(echo "$COUNT / $m" | bc -l)" "${WALLS[$label]# }"
  done
} > "$OUT"
cat "$OUT"
echo "written to $OUT" >&2
