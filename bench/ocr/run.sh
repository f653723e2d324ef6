#!/usr/bin/env bash
# The cost of the burned-in text safety net, per modality, on the engine bench corpus.
#
# Usage:
#   bench/ocr/run.sh
#
# For each modality of bench/corpus (built by bench/make_corpus.py), the same files go through
# `alpes anonymize` four times, one after the other, in one run:
#   header-only   --no-clean pixel-data   (no pixel work at all: the issue's baseline)
#   no-ocr        --ocr off               (Clean Pixel Data without the safety net)
#   all-text      (the default)
#   phi           --ocr phi
# and the table gives files/s (median of REPEAT runs) and the default's ratio to header-only.
# The ultrasound files of the corpus have text burned in by their devices, so the US row is the
# "images with text" case; CT and MR have none.
#
# BY=source groups by source file (the corpus's copies of one file) instead of by modality.
#
# Environment: ALPES (default target/release/alpes), CORPUS (default bench/corpus), JOBS
# (default 2), REPEAT (default 3), OUT_ROOT (default /dev/shm/alpes-ocr-bench), VENV (default
# bench/.venv, for pydicom), SECRET_FILE (default bench/secret.key), OMP_THREAD_LIMIT (default 1).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
cd "$REPO_DIR"

ALPES="${ALPES:-target/release/alpes}"
CORPUS="${CORPUS:-bench/corpus}"
JOBS="${JOBS:-2}"
REPEAT="${REPEAT:-3}"
OUT_ROOT="${OUT_ROOT:-/dev/shm/alpes-ocr-bench}"
VENV="${VENV:-bench/.venv}"
SECRET_FILE="${SECRET_FILE:-bench/secret.key}"
export OMP_THREAD_LIMIT="${OMP_THREAD_LIMIT:-1}"

[ -x "$ALPES" ] || { echo "bench/ocr: no Alpes binary at $ALPES (cargo build --release -p alpes)" >&2; exit 2; }
[ -d "$CORPUS/dicom" ] || { echo "bench/ocr: no corpus at $CORPUS/dicom (bench/.venv/bin/python bench/make_corpus.py)" >&2; exit 2; }
[ -f "$SECRET_FILE" ] || head -c 32 /dev/urandom > "$SECRET_FILE"

rm -rf "$OUT_ROOT"
mkdir -p "$OUT_ROOT/in"
# One directory of links per modality (read from each file's header).
"$VENV/bin/python" - "$CORPUS/dicom" "$OUT_ROOT/in" "${BY:-modality}" <<'EOF'
import os, sys, pydicom
src, dst, by = sys.argv[1], sys.argv[2], sys.argv[3]
for root, _, files in os.walk(src):
    for f in sorted(files):
        path = os.path.join(root, f)
        try:
            ds = pydicom.dcmread(path, defer_size=1024)
        except Exception:
            continue
        if "PixelData" not in ds:
            continue
        modality = str(getattr(ds, "Modality", "") or "none")
        if by == "source":
            modality += "_" + f.split("_", 1)[1].removesuffix(".dcm")
        os.makedirs(os.path.join(dst, modality), exist_ok=True)
        os.symlink(os.path.abspath(path), os.path.join(dst, modality, f))
EOF

# Runs one configuration on one modality; prints the wall seconds.
run() {
  local dir="$1" out="$2"; shift 2
  rm -rf "$out"
  local start end
  start=$(date +%s.%N)
  "$ALPES" anonymize --secret-file "$SECRET_FILE" --jobs "$JOBS" --out "$out" "$@" "$dir" >/dev/null 2>"$out.log" || true
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

commit="$(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
echo "# bench/ocr, $(date -u +%Y-%m-%dT%H:%MZ), commit $commit, $(getconf _NPROCESSORS_ONLN) cores, JOBS=$JOBS, REPEAT=$REPEAT, OMP_THREAD_LIMIT=$OMP_THREAD_LIMIT"
echo
echo "| modality | files | header-only files/s | no-ocr files/s | all-text (default) files/s | phi files/s | default ÷ header-only | files with text blanked |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for dir in "$OUT_ROOT"/in/*/; do
  modality="$(basename "$dir")"
  files=$(find "$dir" -name '*.dcm' | wc -l)
  declare -A rate=()
  for config in header-only no-ocr all-text phi; do
    case "$config" in
      header-only) args=(--no-clean pixel-data) ;;
      no-ocr) args=(--ocr off) ;;
      all-text) args=(--report "$OUT_ROOT/$modality.all-text.jsonl") ;;
      phi) args=(--ocr phi) ;;
    esac
    walls=()
    for _ in $(seq "$REPEAT"); do
      walls+=("$(run "$dir" "$OUT_ROOT/out-$modality-$config" "${args[@]}")")
    done
    wall=$(printf '%s\n' "${walls[@]}" | median)
    rate[$config]=$(echo "$files / $wall" | bc -l)
  done
  blanked=$(grep -c '"source":"ocr"' "$OUT_ROOT/$modality.all-text.jsonl" || true)
  printf '| %s | %d | %.0f | %.0f | %.0f | %.0f | %.2f | %d |\n' "$modality" "$files" \
    "${rate[header-only]}" "${rate[no-ocr]}" "${rate[all-text]}" "${rate[phi]}" \
    "$(echo "${rate[all-text]} / ${rate[header-only]}" | bc -l)" "$blanked"
  unset rate
done
