#!/usr/bin/env bash
# Side-by-side de-identification benchmark: Alpes vs. peer tools, same corpus, one run.
#
# Usage:
#   bench/anonymize_compare.sh [--sample N] [--repeat N] [--tools a,b,...] [--no-warmup]
#                              [--no-phi-check] [--keep-outputs] [--corpus DIR]
#
# Environment:
#   CORPUS      corpus dir (default bench/corpus; built with make_corpus.py if missing).
#               The tools are pointed at $CORPUS/dicom when it exists (make_corpus.py's
#               layout: only DICOM files there, MANIFEST.txt beside it), else at $CORPUS.
#   ALPES       Alpes binary (default target/release/alpes; skipped with a message if absent)
#   JOBS        worker threads for Alpes and the dcmanon CLI (default 2)
#   VENV        peers venv (default bench/.venv, see bench/peers/install.sh)
#   OUT_ROOT    scratch dir for outputs and logs (default /tmp/alpes-bench). Where /tmp
#               is a real disk, writing the outputs can cost more than the fast tools
#               themselves; OUT_ROOT=/dev/shm/alpes-bench (tmpfs) measures the tools only.
#   REPEAT      same as --repeat (default 1)
#   SECRET_FILE Alpes secret (default bench/secret.key; 32 random bytes created if missing)
#
# --sample N     run the slow pure-Python peers (dicognito, dicom-anonymizer, deid)
#                on the first N corpus files only (sorted, so every source type is
#                represented once N >= ~60) and report their files/s, MB/s from the
#                sample, plus an extrapolated full-corpus wall time. Marked in the table.
# --repeat N     run every tool N times (fresh output dir each time) and report the
#                median wall / CPU time and the largest peak RSS; all walls are listed.
# --tools LIST   comma-separated subset of:
#                alpes,alpes-header,alpes-region,dcmanon,dcmanon-py,gdcmanon-basic,gdcmanon-dumb,
#                dicognito,dicom-anonymizer,deid
#
# Every tool gets a fresh output dir, runs once under /usr/bin/time -v (peak RSS),
# with wall time from the shell clock. A tool that is missing or exits non-zero
# is recorded (with its exit code) and the script carries on.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
cd "$REPO_DIR"

CORPUS="${CORPUS:-bench/corpus}"
ALPES="${ALPES:-target/release/alpes}"
JOBS="${JOBS:-2}"
VENV="${VENV:-bench/.venv}"
OUT_ROOT="${OUT_ROOT:-/tmp/alpes-bench}"
SECRET_FILE="${SECRET_FILE:-bench/secret.key}"
SAMPLE=0
WARMUP=1
PHI_CHECK=1
KEEP=0
REPEAT="${REPEAT:-1}"
ALL_TOOLS=(alpes alpes-header alpes-region dcmanon dcmanon-py gdcmanon-basic gdcmanon-dumb dicognito dicom-anonymizer deid)
SLOW_TOOLS=" dicognito dicom-anonymizer deid "
TOOLS=("${ALL_TOOLS[@]}")

die() { echo "anonymize_compare: $*" >&2; exit 2; }
say() { echo "[bench] $*" >&2; }

while (($#)); do
  case "$1" in
    --sample) SAMPLE="${2:?--sample needs N}"; shift 2 ;;
    --sample=*) SAMPLE="${1#*=}"; shift ;;
    --tools) IFS=, read -r -a TOOLS <<<"${2:?--tools needs a list}"; shift 2 ;;
    --tools=*) IFS=, read -r -a TOOLS <<<"${1#*=}"; shift ;;
    --corpus) CORPUS="${2:?}"; shift 2 ;;
    --repeat) REPEAT="${2:?--repeat needs N}"; shift 2 ;;
    --repeat=*) REPEAT="${1#*=}"; shift ;;
    --no-warmup) WARMUP=0; shift ;;
    --no-phi-check) PHI_CHECK=0; shift ;;
    --keep-outputs) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ "$SAMPLE" =~ ^[0-9]+$ ]] || die "--sample expects a number"
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "--repeat expects a number >= 1"
for t in "${TOOLS[@]}"; do [[ " ${ALL_TOOLS[*]} " == *" $t "* ]] || die "unknown tool: $t"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing: run bench/peers/install.sh"

# --- corpus ---------------------------------------------------------------
if [[ ! -d "$CORPUS" ]] || ! find "$CORPUS" -name '*.dcm' -print -quit | grep -q .; then
  [[ -x "$VENV/bin/python" ]] || die "no corpus at $CORPUS and no $VENV: run bench/peers/install.sh"
  say "building corpus in $CORPUS"
  "$VENV/bin/python" bench/make_corpus.py --out "$CORPUS" --force
fi
CORPUS="$(cd "$CORPUS" && pwd)"
MANIFEST="$CORPUS/MANIFEST.txt"
if [[ -d "$CORPUS/dicom" ]]; then CORPUS="$CORPUS/dicom"; fi   # the input tree handed to every tool

count_dcm()  { find "$1" -type f -name '*.dcm' | wc -l; }
bytes_dcm()  { find "$1" -type f -name '*.dcm' -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
count_out()  { find "$1" -type f ! -name MANIFEST.txt | wc -l; }

FULL_FILES=$(count_dcm "$CORPUS")
FULL_BYTES=$(bytes_dcm "$CORPUS")
((FULL_FILES > 0)) || die "no *.dcm files in $CORPUS"

rm -rf "$OUT_ROOT"
mkdir -p "$OUT_ROOT/logs"
LOGS="$OUT_ROOT/logs"

SAMPLE_DIR=""
if ((SAMPLE > 0 && SAMPLE < FULL_FILES)); then
  SAMPLE_DIR="$OUT_ROOT/sample-$SAMPLE"
  say "building $SAMPLE-file sample for the slow peers in $SAMPLE_DIR"
  mkdir -p "$SAMPLE_DIR"
  # (no `| head` straight on the pipeline: with pipefail, SIGPIPE would abort the script)
  (cd "$CORPUS" && find . -type f -name '*.dcm' | LC_ALL=C sort >"$OUT_ROOT/all-files.txt")
  head -n "$SAMPLE" "$OUT_ROOT/all-files.txt" >"$OUT_ROOT/sample-files.txt"
  tar -C "$CORPUS" -cf - -T "$OUT_ROOT/sample-files.txt" | tar -C "$SAMPLE_DIR" -xf -
fi

if ((WARMUP)); then
  say "warm-up: reading corpus into the page cache"
  find "$CORPUS" -type f -exec cat {} + >/dev/null
  if [[ -n "$SAMPLE_DIR" ]]; then find "$SAMPLE_DIR" -type f -exec cat {} + >/dev/null; fi
fi

# --- helpers --------------------------------------------------------------
if [[ ! -s "$SECRET_FILE" ]]; then
  say "creating $SECRET_FILE (32 random bytes)"
  mkdir -p "$(dirname "$SECRET_FILE")"
  (umask 077; head -c 32 /dev/urandom >"$SECRET_FILE")
fi
GDCM_KEY="$OUT_ROOT/gdcm-key.pem"
GDCM_CERT="$OUT_ROOT/gdcm-cert.pem"
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$GDCM_KEY" -out "$GDCM_CERT" \
    -subj /CN=alpes-bench -days 3650 >/dev/null 2>&1 || true
fi
# gdcmanon --dumb: the same PHI make_corpus.py plants (tags in hex).
# shellcheck disable=SC2054  # the commas are part of the tag arguments
GDCM_DUMB_ACTIONS=(--replace 10,10=ANONYMOUS --empty 10,20 --remove 10,30 --remove 8,80
                   --remove 8,90 --remove 8,1070 --empty 8,50 --remove 20,4000)

pyver() { "$VENV/bin/python" -c "from importlib.metadata import version; print(version('$1'))" 2>/dev/null || echo "?"; }

tool_version() {
  case "$1" in
    alpes|alpes-header|alpes-region) "$ALPES" --version 2>/dev/null | head -1 || echo "?" ;;
    dcmanon) if [[ -x "$VENV/bin/dcmanon" ]]; then echo "dicom-anonymization $("$VENV/bin/dcmanon" --version 2>/dev/null | awk '{print $NF}') (Rust CLI)"; else echo "?"; fi ;;
    dcmanon-py) echo "dcmanon $(pyver dcmanon) (PyPI)" ;;
    gdcmanon-*) echo "gdcm $(gdcmanon --version 2>/dev/null | awk '{print $3}')" ;;
    dicognito) echo "dicognito $(pyver dicognito)" ;;
    dicom-anonymizer) echo "dicom-anonymizer $(pyver dicom-anonymizer)" ;;
    deid) echo "deid $(pyver deid)" ;;
  esac
}

# Fills CMD=(...) for tool $1, input $2, output $3; returns 1 (with REASON) when unavailable.
tool_cmd() {
  local t=$1 in=$2 out=$3
  REASON=""
  case "$t" in
    alpes|alpes-header|alpes-region)
      [[ -x "$ALPES" ]] || { REASON="Alpes binary not found at $ALPES (build it: cargo build --release)"; return 1; }
      CMD=("$ALPES" anonymize --secret-file "$SECRET_FILE" --jobs "$JOBS")
      # shellcheck disable=SC2054
      if [[ $t == alpes-region ]]; then CMD+=(--region 0,0,64,32); fi
      # Header only, like the peers: no pixel burn-out (not even ultrasound regions).
      if [[ $t == alpes-header ]]; then CMD+=(--no-clean pixel-data); fi
      CMD+=(--out "$out" "$in")
      ;;
    dcmanon)
      [[ -x "$VENV/bin/dcmanon" ]] || { REASON="$VENV/bin/dcmanon not installed (bench/peers/install.sh needs cargo)"; return 1; }
      CMD=(env RAYON_NUM_THREADS="$JOBS" "$VENV/bin/dcmanon" anonymize --recursive --continue -i "$in" -o "$out") ;;
    dcmanon-py)
      CMD=("$VENV/bin/python" bench/peers/dcmanon_run.py "$in" "$out") ;;
    gdcmanon-basic)
      command -v gdcmanon >/dev/null || { REASON="gdcmanon not installed (apt-get install libgdcm-tools)"; return 1; }
      [[ -s "$GDCM_CERT" ]] || { REASON="no certificate for gdcmanon -e (openssl missing?)"; return 1; }
      CMD=(gdcmanon -e -c "$GDCM_CERT" --recursive --continue -i "$in" -o "$out") ;;
    gdcmanon-dumb)
      command -v gdcmanon >/dev/null || { REASON="gdcmanon not installed (apt-get install libgdcm-tools)"; return 1; }
      CMD=(gdcmanon --dumb "${GDCM_DUMB_ACTIONS[@]}" --recursive --continue -i "$in" -o "$out") ;;
    dicognito)
      # The 0.19.0 console script is broken (main() needs an argument): use -m.
      CMD=("$VENV/bin/python" -m dicognito --quiet --output-directory "$out" "$in") ;;
    dicom-anonymizer)
      CMD=("$VENV/bin/python" bench/peers/dicom_anonymizer_run.py "$in" "$out") ;;
    deid)
      CMD=("$VENV/bin/python" bench/peers/deid_run.py "$in" "$out") ;;
  esac
  if [[ ${CMD[0]} == "$VENV/bin/python" && ! -x "$VENV/bin/python" ]]; then
    REASON="$VENV missing: run bench/peers/install.sh"; return 1
  fi
  return 0
}

# Quote only the words that need it (printf %q would also escape commas).
shell_quote() {
  local w out=""
  for w in "$@"; do
    if [[ $w =~ ^[A-Za-z0-9_./,=:+@%-]+$ ]]; then out+="$w "; else out+="$(printf '%q' "$w") "; fi
  done
  printf '%s' "${out% }"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

declare -A R_RUNS R_VER R_IN R_OUT R_WALL R_CPU R_RSS R_STATUS R_NOTE R_CMD R_PHI R_FPS R_MBS
ALPES_FPS=""

run_tool() {
  local t=$1 in=$CORPUS files=$FULL_FILES bytes=$FULL_BYTES out="$OUT_ROOT/out-$1"
  if [[ -n "$SAMPLE_DIR" && "$SLOW_TOOLS" == *" $t "* ]]; then
    in=$SAMPLE_DIR; files=$(count_dcm "$SAMPLE_DIR"); bytes=$(bytes_dcm "$SAMPLE_DIR")
    R_NOTE[$t]="sample: $files of $FULL_FILES files"
  fi
  R_VER[$t]=$(tool_version "$t")
  R_IN[$t]=$files
  rm -rf "$out"; mkdir -p "$out"
  if ! tool_cmd "$t" "$in" "$out"; then
    say "SKIP $t: $REASON"
    R_STATUS[$t]="skipped"; R_NOTE[$t]="$REASON"; R_CMD[$t]="(not run)"
    return 0
  fi
  R_CMD[$t]="$(shell_quote "${CMD[@]}")"
  say "run  $t: ${R_CMD[$t]}"
  local rc=0 t0 t1 r walls="" cpus="" rss="" w c m
  for ((r = 1; r <= REPEAT; r++)); do
    if ((r > 1)); then rm -rf "$out"; mkdir -p "$out"; fi
    sync
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$LOGS/$t.time" "${CMD[@]}" >"$LOGS/$t.out" 2>"$LOGS/$t.err" || rc=$?
    t1=$(date +%s%N)
    w=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    c=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$LOGS/$t.time")
    m=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$LOGS/$t.time")
    walls+="$w "; cpus+="$c "
    rss=$(awk -v a="${rss:-0}" -v b="${m:-0}" 'BEGIN {print (b > a ? b : a)}')
    if ((REPEAT > 1)); then say "     $t run $r/$REPEAT: ${w}s"; fi
    ((rc == 0)) || break
  done
  local wall cpu
  # shellcheck disable=SC2086  # split the space-separated lists on purpose
  wall=$(median $walls)
  # shellcheck disable=SC2086
  cpu=$(median $cpus)
  R_WALL[$t]=$wall; R_RSS[$t]=${rss:-?}; R_CPU[$t]=${cpu:-?}
  if ((REPEAT > 1)); then R_RUNS[$t]="${walls% }"; fi
  local nout
  nout=$(count_out "$out")
  R_OUT[$t]=$nout
  R_FPS[$t]=$(awk -v n="$files" -v w="$wall" 'BEGIN {printf "%.1f", (w > 0 ? n / w : 0)}')
  R_MBS[$t]=$(awk -v b="$bytes" -v w="$wall" 'BEGIN {printf "%.2f", (w > 0 ? b / 1e6 / w : 0)}')
  if ((rc != 0)); then
    R_STATUS[$t]="FAILED rc=$rc"
  elif ((nout < files)); then
    R_STATUS[$t]="ok, $((files - nout)) missing"
  else
    R_STATUS[$t]="ok"
  fi
  if [[ -n "${R_NOTE[$t]:-}" && "${R_NOTE[$t]}" == sample:* ]]; then
    R_NOTE[$t]+="; est. full corpus $(awk -v n="$FULL_FILES" -v f="${R_FPS[$t]}" 'BEGIN {printf "%.0f", (f > 0 ? n / f : 0)}') s"
  fi
  if ((PHI_CHECK)); then
    R_PHI[$t]=$(python3 bench/phi_check.py "$out" | awk '{print $1}')
  fi
  say "done $t: ${R_STATUS[$t]}, ${wall}s, ${R_OUT[$t]}/$files files, ${R_RSS[$t]} MiB"
  # The ratio compares like with like: the peers burn no pixels, so Alpes' header-only run is the base.
  if [[ $t == alpes-header && $rc == 0 ]]; then ALPES_FPS=${R_FPS[$t]}; fi
  if ((KEEP == 0)); then rm -rf "$out"; fi
}

for t in "${TOOLS[@]}"; do
  run_tool "$t"
done

# --- report ---------------------------------------------------------------
ratio() {
  local f=${R_FPS[$1]:-}
  if [[ -z "$ALPES_FPS" || -z "$f" || "${R_STATUS[$1]}" == skipped ]]; then echo "n/a"; return; fi
  awk -v a="$ALPES_FPS" -v p="$f" 'BEGIN {if (p > 0) printf "%.2fx", a / p; else print "n/a"}'
}

table() {
  echo "| tool | version | status | files in | files out | wall s | MB/s | files/s | CPU s | peak RSS MiB | alpes-header files/s ÷ tool | files with planted PHI left | note |"
  echo "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
  for t in "${TOOLS[@]}"; do
    if [[ ${R_STATUS[$t]} == skipped ]]; then
      echo "| $t | ${R_VER[$t]:-?} | skipped | ${R_IN[$t]} | – | – | – | – | – | – | n/a | – | ${R_NOTE[$t]} |"
    elif [[ ${R_STATUS[$t]} == FAILED* ]] && ((R_OUT[$t] * 10 < R_IN[$t] * 9)); then
      echo "| $t | ${R_VER[$t]} | **${R_STATUS[$t]}** | ${R_IN[$t]} | ${R_OUT[$t]} | ${R_WALL[$t]} | – | – | ${R_CPU[$t]} | ${R_RSS[$t]} | n/a | ${R_PHI[$t]:-–} | rates omitted (under 90% of files written); see Failures${R_NOTE[$t]:+; ${R_NOTE[$t]}} |"
    elif [[ ${R_STATUS[$t]} == FAILED* ]]; then
      echo "| $t | ${R_VER[$t]} | **${R_STATUS[$t]}** | ${R_IN[$t]} | ${R_OUT[$t]} | ${R_WALL[$t]} | ${R_MBS[$t]} | ${R_FPS[$t]} | ${R_CPU[$t]} | ${R_RSS[$t]} | $(ratio "$t") | ${R_PHI[$t]:-–} | partial: $((R_IN[$t] - R_OUT[$t])) input(s) not written, rates over all inputs; see Failures${R_NOTE[$t]:+; ${R_NOTE[$t]}} |"
    else
      echo "| $t | ${R_VER[$t]} | ${R_STATUS[$t]} | ${R_IN[$t]} | ${R_OUT[$t]} | ${R_WALL[$t]} | ${R_MBS[$t]} | ${R_FPS[$t]} | ${R_CPU[$t]} | ${R_RSS[$t]} | $(ratio "$t") | ${R_PHI[$t]:-–} | ${R_NOTE[$t]:-} |"
    fi
  done
}

TABLE="$(table)"
echo
echo "$TABLE"
echo

STAMP=$(date +%Y-%m-%d-%H%M%S)
mkdir -p bench/results
RESULT="bench/results/anonymize-$STAMP.md"
{
  echo "# De-identification benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "## Machine"
  echo
  echo '```'
  echo "uname -a : $(uname -a)"
  echo "nproc    : $(nproc)"
  echo "cpu      : $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "memory   : $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "git      : $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo '```'
  echo
  echo "## Corpus"
  echo
  echo "\`$CORPUS\`: $FULL_FILES files, $FULL_BYTES bytes ($(awk -v b="$FULL_BYTES" 'BEGIN {printf "%.1f", b / 1e6}') MB)."
  if [[ -f "$MANIFEST" ]]; then
    echo "$(grep -m1 '^content_sha256' "$MANIFEST" || true) (from $MANIFEST)"
  fi
  if [[ -n "$SAMPLE_DIR" ]]; then echo "Slow peers ($SLOW_TOOLS) ran on the first $SAMPLE files only; their files/s and MB/s are from that sample."; fi
  echo "Page cache warm-up: $([[ $WARMUP == 1 ]] && echo yes || echo no). Tools ran sequentially, each $REPEAT time(s)$( ((REPEAT > 1)) && echo ' (median reported)'); JOBS=$JOBS."
  echo "Outputs written under \`$OUT_ROOT\` (filesystem: $(stat -f -c %T "$OUT_ROOT"))."
  echo
  echo "## Results"
  echo
  echo "$TABLE"
  echo
  echo "wall s: shell clock around the command; CPU s: user+sys from /usr/bin/time -v; peak RSS: its 'Maximum resident set size'."
  echo "MB/s = input bytes / wall / 10^6. 'files with planted PHI left' = output files still containing a planted MRN or InstitutionName verbatim (bench/phi_check.py)."
  echo
  echo "## Commands"
  echo
  for t in "${TOOLS[@]}"; do echo "- **$t**: \`${R_CMD[$t]}\`"; done
  if ((REPEAT > 1)); then
    echo; echo "## All wall times (s)"; echo
    for t in "${TOOLS[@]}"; do [[ -n "${R_RUNS[$t]:-}" ]] && echo "- $t: ${R_RUNS[$t]}"; done; true
  fi
  failed=0
  for t in "${TOOLS[@]}"; do
    if [[ ${R_STATUS[$t]} == FAILED* ]]; then
      if ((failed == 0)); then echo; echo "## Failures"; fi
      failed=1
      echo; echo "### $t (${R_STATUS[$t]})"; echo; echo '```'; tail -n 15 "$LOGS/$t.err"; echo '```'
    fi
  done
} >"$RESULT"
say "wrote $RESULT (logs in $LOGS)"
