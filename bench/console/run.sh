#!/usr/bin/env bash
# Upload through the browser, Alpes' web console against Orthanc Explorer, side by side on the
# same folder of FILES distinct DICOM files (CT_small.dcm with a new SOP Instance UID each, so
# neither server takes two for one), in headless Chromium (bench/console/upload.mjs). One command:
#   bench/console/run.sh
# Environment (defaults in brackets):
#   FILES        how many files [200]
#   RUNS         how many runs of each, the median reported [3]
#   ALPES_BIN    the binary [target/release/alpes, built if missing]
#   WORK         scratch dir [/tmp/alpes-console-bench]
#   ALPES_CHROMIUM  Chromium [/usr/bin/chromium]
# Needs: node with console/web's packages (npm ci in console/web), Debian's chromium and orthanc,
# python3 with pydicom (installed into WORK/venv if missing).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
# shellcheck source=../lib/common.sh
source bench/lib/common.sh
FILES=${FILES:-200}
RUNS=${RUNS:-3}
WORK=${WORK:-/tmp/alpes-console-bench}
ALPES_BIN=${ALPES_BIN:-target/release/alpes}
export ALPES_CHROMIUM=${ALPES_CHROMIUM:-/usr/bin/chromium}
PASSWORD="correct horse battery staple"
[[ -x $ALPES_BIN ]] || cargo build --release -p alpes
[[ -d console/web/node_modules/playwright-core ]] || npm ci --prefix console/web --no-audit --no-fund --loglevel=error
command -v Orthanc >/dev/null || die "Orthanc is missing (apt-get install orthanc)"
rm -rf "$WORK"; mkdir -p "$WORK"
ALPES_PID= ; ORTHANC_PID=
cleanup() {
    [[ -n $ALPES_PID ]] && { kill -INT "$ALPES_PID" 2>/dev/null; wait "$ALPES_PID" 2>/dev/null || true; }
    stop_orthanc
}
trap cleanup EXIT

# The folder: FILES copies of CT_small.dcm, each with its own SOP Instance UID.
PY=${PY:-$WORK/venv/bin/python}
[[ -x $PY ]] || { python3 -m venv "$WORK/venv"; "$WORK/venv/bin/pip" install -q pydicom==3.0.2; }
"$PY" - "$WORK/folder" "$FILES" <<'PYEOF'
import sys, pathlib, pydicom
from pydicom.uid import generate_uid
out, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
out.mkdir(parents=True)
src = "anonymizer/tests/fixtures/dicom/CT_small.dcm"
for i in range(n):
    ds = pydicom.dcmread(src)
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.save_as(out / f"ct_{i:04}.dcm", enforce_file_format=True)
PYEOF

results=()
for run in $(seq "$RUNS"); do
    dir=$WORK/run-$run
    mkdir -p "$dir"
    "$ALPES_BIN" up --data-dir "$dir/alpes" --listen 127.0.0.1:0 >"$dir/alpes.stdout" 2>"$dir/alpes.stderr" &
    ALPES_PID=$!
    for _ in $(seq 600); do grep -q 'listening on' "$dir/alpes.stdout" 2>/dev/null && break; sleep 0.1; done
    ALPES_URL=$(sed -n 's/^alpes: listening on \(http[^ ]*\).*/\1/p' "$dir/alpes.stdout")
    [[ -n $ALPES_URL ]] || die "alpes up did not start: $(tail -5 "$dir/alpes.stderr")"
    for _ in $(seq 600); do curl -fsS "$ALPES_URL/ready" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS -H 'Content-Type: application/json' "$ALPES_URL/usuarios" \
        -d "{\"nombre\": \"Bench\", \"email\": \"bench@hospital.example\", \"password\": \"$PASSWORD\", \"rol\": \"proveedor\"}" >/dev/null
    launch_orthanc "$dir/orthanc" 4
    line=$(ALPES_URL=$ALPES_URL ORTHANC_URL=$ORTHANC_URL ALPES_FOLDER="$WORK/folder" ORTHANC_FOLDER="$WORK/folder" \
        ALPES_PROVIDER="bench@hospital.example $PASSWORD" FILES=$FILES node bench/console/upload.mjs)
    log "run $run: $line"
    results+=("$line")
    stop_orthanc
    kill -INT "$ALPES_PID"; wait "$ALPES_PID" 2>/dev/null || true; ALPES_PID=
done
printf '%s\n' "${results[@]}" >"$WORK/results.jsonl"
# The medians of each measure over the runs.
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (k) => { const v = rows.map((r) => r[k]).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
const keys = Object.keys(rows[0]);
console.log(JSON.stringify(Object.fromEntries(keys.map((k) => [k, med(k)])).valueOf()));
' "$WORK/results.jsonl"
