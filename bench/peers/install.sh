#!/usr/bin/env bash
# Install the peer de-identification tools used by bench/anonymize_compare.sh.
#
#   bench/peers/install.sh              # Debian tools + Python venv (+ dcmanon CLI if cargo exists)
#   NO_APT=1 bench/peers/install.sh     # skip apt-get (tools already installed / not root)
#   NO_CARGO=1 bench/peers/install.sh   # skip building the dcmanon Rust CLI
#   CARGO_INSTALL_JOBS=1 bench/peers/install.sh  # build the dcmanon CLI on one core only
#
# What it installs (pinned, so numbers stay comparable between runs):
#   Debian : libgdcm-tools (gdcmanon), hyperfine, time (/usr/bin/time -v), openssl
#   PyPI   : into bench/.venv -- pydicom, dicognito, dicom-anonymizer (Kitware),
#            deid (pydicom/deid), dcmanon (Python bindings of the Rust
#            dicom-anonymization crate; the PyPI package has no CLI)
#   crates : dicom-anonymization (its `dcmanon` binary) -> bench/.venv/bin/dcmanon,
#            built with its own target dir under /tmp, never inside the Alpes workspace.
#
# Idempotent: re-running only installs what is missing.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$BENCH_DIR/.venv}"
PYTHON="${PYTHON:-python3}"

PY_PACKAGES=(
  "pydicom==3.0.2"
  "dicognito==0.19.0"
  "dicom-anonymizer==2.1.0"
  "deid==0.4.13"
  "dcmanon==0.3.1"
)
DCMANON_CRATE_VERSION="${DCMANON_CRATE_VERSION:-0.3.1}"

log() { printf '[install] %s\n' "$*"; }

# --- Debian packages ------------------------------------------------------
if [[ "${NO_APT:-0}" != 1 ]]; then
  missing=()
  command -v gdcmanon  >/dev/null || missing+=(libgdcm-tools)
  command -v hyperfine >/dev/null || missing+=(hyperfine)
  [[ -x /usr/bin/time ]]          || missing+=(time)
  command -v openssl   >/dev/null || missing+=(openssl)
  if ((${#missing[@]})); then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    log "apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "Debian tools already present (gdcmanon, hyperfine, /usr/bin/time, openssl)"
  fi
fi

# --- Python venv ----------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
log "pip install ${PY_PACKAGES[*]}"
"$VENV/bin/python" -m pip install -q "${PY_PACKAGES[@]}"

# --- dcmanon Rust CLI (optional but recommended: the closest Rust peer) -----
if [[ "${NO_CARGO:-0}" != 1 ]]; then
  if [[ -x "$VENV/bin/dcmanon" ]] && "$VENV/bin/dcmanon" --version 2>/dev/null | grep -q "$DCMANON_CRATE_VERSION"; then
    log "dcmanon CLI $DCMANON_CRATE_VERSION already installed"
  elif command -v cargo >/dev/null; then
    log "cargo install dicom-anonymization $DCMANON_CRATE_VERSION (bin dcmanon; takes a few minutes)"
    # Run from /tmp with a private target dir so nothing touches the Alpes workspace.
    (cd /tmp && CARGO_TARGET_DIR="${DCMANON_TARGET_DIR:-/tmp/dcmanon-build}" \
      cargo install --locked --quiet dicom-anonymization --version "$DCMANON_CRATE_VERSION" \
        --bin dcmanon --root "$VENV" ${CARGO_INSTALL_JOBS:+-j "$CARGO_INSTALL_JOBS"})
  else
    log "cargo not found: skipping the dcmanon CLI (the benchmark will mark it missing)"
  fi
fi

# --- Report ---------------------------------------------------------------
log "installed versions:"
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version
for p in ("pydicom", "dicognito", "dicom-anonymizer", "deid", "dcmanon"):
    print(f"  {p:18s} {version(p)}")
EOF
printf '  %-18s %s\n' gdcmanon "$(gdcmanon --version 2>/dev/null | head -1 || echo missing)"
printf '  %-18s %s\n' hyperfine "$(hyperfine --version 2>/dev/null || echo missing)"
printf '  %-18s %s\n' "dcmanon (CLI)" "$("$VENV/bin/dcmanon" --version 2>/dev/null || echo missing)"
