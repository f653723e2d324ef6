# shellcheck shell=bash
# Registry part of deploy/local/engines.sh: one Apicurio Registry 3 instance,
# `registry`, serving the Confluent Schema Registry API on
# http://127.0.0.1:8081/apis/ccompat/v7 (management: 127.0.0.1:8091).
# Owns the cache $ENGINES_CACHE/registry/apicurio-registry-<version>/ (the
# unpacked Quarkus app from Maven Central, fetched once), DIR/registry/ (the H2
# database file, temp files, the pinned version) and DIR/run/registry.sh.
# Storage is a file-backed H2 database, so a restart keeps subjects, versions
# and schema ids (the events on Kafka carry those ids).

REGISTRY_PORT=8081
REGISTRY_MGMT_PORT=8091
REGISTRY_BASE="http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"
# 3.3.x classes are Java 21 bytecode (class file 65; Java 17 stops with
# UnsupportedClassVersionError). 3.0.9 is Java 11 bytecode and runs on Java 17.
REGISTRY_VERSION_J21=3.3.3
REGISTRY_VERSION_J17=3.0.9

registry_instances() { echo registry; }
registry_serial() { return 1; }
# Measured: 7-20 s to ready on 2 busy cores.
registry_ready_timeout() { echo 120; }

# registry_java21: prints a Java 21 or newer `java` ($ALPES_REGISTRY_JAVA
# first, then the Temurin 25 JDK, then any JDK under /usr/lib/jvm), else fails.
registry_java21() {
  local j v
  for j in "${ALPES_REGISTRY_JAVA:-}" /usr/lib/jvm/temurin-25-jdk-amd64/bin/java /usr/lib/jvm/*/bin/java; do
    if [ -z "$j" ] || [ ! -x "$j" ]; then continue; fi
    v="$("$j" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
    if [ -n "$v" ] && [ "$v" -ge 21 ]; then
      printf '%s\n' "$j"
      return 0
    fi
  done
  return 1
}

# registry_version DIR: the Apicurio version of this DIR. Chosen on the first
# start ($ALPES_REGISTRY_VERSION, else 3.3.3 when a Java 21+ exists, else
# 3.0.9) and pinned in DIR/registry/version: the H2 schema differs between
# versions (DB version 101 in 3.0.9, 109 in 3.3.3).
registry_version() {
  local f="$1/registry/version" v
  if [ -s "$f" ]; then
    cat "$f"
    return 0
  fi
  v="$(registry_default_version)"
  mkdir -p "$1/registry"
  printf '%s\n' "$v" >"$f"
  printf '%s\n' "$v"
}

# The version a new DIR gets.
registry_default_version() {
  if [ -n "${ALPES_REGISTRY_VERSION:-}" ]; then
    printf '%s\n' "$ALPES_REGISTRY_VERSION"
  elif registry_java21 >/dev/null; then
    printf '%s\n' "$REGISTRY_VERSION_J21"
  else
    printf '%s\n' "$REGISTRY_VERSION_J17"
  fi
}

# The version a new DIR gets, into the cache (once).
registry_download() { registry_fetch "$(registry_default_version)" >/dev/null; }

# registry_fetch VERSION: unpacks io.apicurio:apicurio-registry-app:VERSION
# (classifier `all`, a tar.gz of about 110-160 MB) into the cache, once, and
# prints that folder. The Maven plugin runs in the cache folder so that no
# project pom.xml in the current directory is picked up.
registry_fetch() {
  local v="$1" dest="$ENGINES_CACHE/registry/apicurio-registry-$1"
  if [ ! -f "$dest/.complete" ]; then
    command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is needed to fetch Apicurio Registry from Maven Central"
    rm -rf "$dest"
    mkdir -p "$dest"
    log "fetching io.apicurio:apicurio-registry-app:$v:tar.gz:all from Maven Central (once; cached in $dest)"
    if ! (cd "$dest" && mvn -B -q dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$v:tar.gz:all" \
      -DoutputDirectory="$dest" >"$dest/.mvn.log" 2>&1); then
      tail -n 30 "$dest/.mvn.log" >&2
      die "Maven could not fetch apicurio-registry-app $v"
    fi
    tar -xzf "$dest/apicurio-registry-app-$v-all.tar.gz" -C "$dest" || die "could not unpack apicurio-registry-app $v"
    rm -f "$dest/apicurio-registry-app-$v-all.tar.gz"
    touch "$dest/.complete"
  fi
  printf '%s\n' "$dest"
}

# registry_jar APP VERSION: the runnable jar. 3.3.0+ puts the Quarkus fast-jar
# at the archive root, 3.1/3.2 under quarkus-app/, 3.0.x ships a legacy
# *-runner.jar with lib/ next to it.
registry_jar() {
  local j
  for j in "$1/quarkus-run.jar" "$1/quarkus-app/quarkus-run.jar" "$1/apicurio-registry-app-$2-runner.jar"; do
    [ -f "$j" ] && { printf '%s\n' "$j"; return 0; }
  done
  die "no runnable jar in $1"
}

registry_prepare() {
  local dir="$1" v app jar java p
  for p in "$REGISTRY_PORT" "$REGISTRY_MGMT_PORT"; do
    if ! running "$dir" registry && port_open 127.0.0.1 "$p"; then
      die "127.0.0.1:$p is in use by another process (a registry of another DIR?)"
    fi
  done
  v="$(registry_version "$dir")"
  case "$v" in
    3.0.*) java="$(java17)" ;;
    *) java="$(registry_java21)" || die "Apicurio Registry $v needs Java 21+ (set ALPES_REGISTRY_JAVA, or start a new DIR with ALPES_REGISTRY_VERSION=$REGISTRY_VERSION_J17 for Java 17)" ;;
  esac
  app="$(registry_fetch "$v")"
  jar="$(registry_jar "$app" "$v")"
  # tmp holds only scratch files (vertx-cache, unpacked brotli4j natives, one
  # folder per run); start it empty when the registry is not running.
  running "$dir" registry || rm -rf "$dir/registry/tmp"
  mkdir -p "$dir/registry/db" "$dir/registry/tmp"
  # Property names: the app's application.properties (apicurio.datasource.url
  # feeds quarkus.datasource.h2.jdbc.url; the default is jdbc:h2:mem:...).
  # - HTTP and the management interface (health, metrics; enabled at build
  #   time in 3.3.x, absent in 3.0.x) bind 127.0.0.1 only.
  # - apicurio.rules.global.compatibility is the global COMPATIBILITY rule used
  #   while none is stored: BACKWARD, Confluent's default (Apicurio's is NONE).
  #   PUT /config still overrides it, and that choice is stored in the database.
  # - The connection pool defaults to 20 open connections; 2 suffice here.
  # - -XX:TieredStopAtLevel=1 (C1 only): ready in 10 s instead of 19 s on 2
  #   busy cores (one measurement); the registry does little work per request.
  write_launcher "$dir" registry "$java" -Xms64m -Xmx384m -XX:TieredStopAtLevel=1 \
    -Djava.io.tmpdir="$dir/registry/tmp" \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$REGISTRY_MGMT_PORT" \
    -Dapicurio.datasource.url="jdbc:h2:file:$dir/registry/db/registry" \
    -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
    -Dapicurio.datasource.jdbc.max-size=20 \
    -Dapicurio.rules.global.compatibility=BACKWARD \
    -Dapicurio.storage.snapshot.location="$dir/registry/tmp" -Dapicurio.import.work-dir="$dir/registry/tmp" \
    -jar "$jar"
}

# Ready when the Confluent API lists subjects (the storage is initialised by then).
registry_ready() { http_ok "$REGISTRY_BASE/subjects"; }

# 3.3.x reports the BACKWARD default of apicurio.rules.global.compatibility at
# GET /config. 3.0.9 enforces it but reports NONE there until a global config
# is stored, so store BACKWARD once per DIR (a later PUT /config is kept).
registry_post() {
  local dir="$1"
  case "$(registry_version "$dir")" in 3.0.*) ;; *) return 0 ;; esac
  [ -f "$dir/registry/.global-config-set" ] && return 0
  curl -fsS -o /dev/null --max-time 10 -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
    -d '{"compatibility":"BACKWARD"}' "$REGISTRY_BASE/config" || die "PUT $REGISTRY_BASE/config failed"
  touch "$dir/registry/.global-config-set"
}

# Confluent clients append /subjects/..., /schemas/ids/N and /config to this URL.
registry_env() { echo "export SCHEMA_REGISTRY_URL=$REGISTRY_BASE"; }
