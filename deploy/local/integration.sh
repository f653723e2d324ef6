#!/usr/bin/env bash
# The integration suite on real engines: starts them with engines.sh in a new
# directory (or uses DIR if given, already started), runs the CQL conformance
# suite (platform/tests/scylla_conformance.rs) and the engine suite
# (alpes/tests/engines.rs, one test at a time), and stops what it started.
#
#   deploy/local/integration.sh [--cql-nodes N] [DIR]
#
# Needs what engines.sh needs (Java 17, Maven, Go, python3; Java 21+ for the
# registry's newest version) and, for the downstream-consumer test,
# ALPES_PYTHON_KAFKA (a Python with confluent-kafka and fastavro).
set -euo pipefail
cd "$(dirname "$0")/../.."
engines=deploy/local/engines.sh
nodes=1
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cql-nodes) nodes="${2:?--cql-nodes needs a number}"; shift 2 ;;
    *) dir="$1"; shift ;;
  esac
done
started=""
if [ -z "$dir" ]; then
  dir="$(mktemp -d "${TMPDIR:-/tmp}/alpes-engines.XXXXXX")"
  started=yes
  # Stop what this run started, whatever happens.
  trap '"$engines" stop "$dir"' EXIT
  t0=$SECONDS
  "$engines" start "$dir" --cql-nodes "$nodes" >/dev/null
  echo "integration: engines started in $((SECONDS - t0)) s ($dir)"
fi
exports="$("$engines" env "$dir")"
t0=$SECONDS
# The conformance suite reads the SCYLLA_* variables (in a subshell: the
# engine suite takes its settings from engines.sh env itself).
(
  eval "$exports"
  cargo test -p alpes-platform --test scylla_conformance --locked -- --test-threads=2
)
echo "integration: the CQL conformance suite took $((SECONDS - t0)) s"
t0=$SECONDS
ALPES_ENGINES_DIR="$dir" cargo test -p alpes --test engines --locked -- --test-threads=1 --nocapture
echo "integration: the engine suite took $((SECONDS - t0)) s"
[ -n "$started" ] && echo "integration: stopping the engines"
exit 0
