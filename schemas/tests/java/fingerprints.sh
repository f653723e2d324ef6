#!/usr/bin/env bash
# Prints the reference fingerprints of every embedded schema (current and
# history) and of tests/avro-extra, computed by Apache Avro's Java
# SchemaNormalization, in the format
# of schemas/tests/fingerprints.tsv:
#
#   schemas/tests/java/fingerprints.sh > schemas/tests/fingerprints.tsv
#
# org.apache.avro:avro comes from Maven Central once (cached with the engines,
# under $ALPES_ENGINES_CACHE, default ~/.cache/alpes-engines). With --classpath
# it prints only the classpath, for the test that runs the Java program itself.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
# shellcheck source=../../../deploy/local/engines/common.sh
. "$root/deploy/local/engines/common.sh"
AVRO_VERSION=1.12.2
lib="$ENGINES_CACHE/avro-$AVRO_VERSION"
mvn_fetch "$lib" "org.apache.avro:avro:$AVRO_VERSION"
if [ "${1:-}" = "--classpath" ]; then
  printf '%s\n' "$lib/*"
  exit 0
fi
cd "$root/schemas"
# Every embedded schema, then schemas that only exercise the canonical form's
# rules (enums, fixed, errors, namespaces, references; tests/avro-extra).
"$(java17)" -cp "$lib/*" "$root/schemas/tests/java/Fingerprints.java" avro/*.avsc avro/history/*.avsc tests/avro-extra/*.avsc 2>/dev/null
