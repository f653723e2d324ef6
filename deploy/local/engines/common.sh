# shellcheck shell=bash
# Shared helpers of deploy/local/engines.sh: logging, the download cache,
# Maven fetches, and launching, stopping and probing one engine instance.
#
# Every instance is described by a launch script, DIR/run/<instance>.sh, that
# `exec`s the engine in the foreground. `launch` runs it detached (its own
# session, so a stop reaches the JVM and its children), writes its PID to
# DIR/pids/<instance>.pid and its output to DIR/logs/<instance>.log. Nothing is
# ever stopped that is not named by a PID file under DIR.

ENGINES_CACHE="${ALPES_ENGINES_CACHE:-$HOME/.cache/alpes-engines}"

log() { printf 'engines: %s\n' "$*" >&2; }
die() { printf 'engines: error: %s\n' "$*" >&2; exit 1; }

# The Java 17 runtime every engine here runs on (Cassandra 5.0 accepts 11 or 17 only).
java17() {
  local j
  for j in "${ALPES_ENGINES_JAVA:-}" /usr/lib/jvm/java-17-openjdk-amd64/bin/java "$(command -v java 2>/dev/null)"; do
    if [ -n "$j" ] && [ -x "$j" ] && "$j" -version 2>&1 | grep -q 'version "17'; then
      printf '%s\n' "$j"
      return 0
    fi
  done
  die "no Java 17 found (set ALPES_ENGINES_JAVA to a Java 17 'java')"
}

# mvn_fetch DEST GROUP:ARTIFACT:VERSION[:TYPE[:CLASSIFIER]]...
# Copies the artifacts and their runtime dependencies into DEST (a jar folder),
# once: DEST/.complete marks a finished fetch, so an interrupted one starts over.
mvn_fetch() {
  local dest="$1"; shift
  [ -f "$dest/.complete" ] && return 0
  command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is needed to fetch engines from Maven Central"
  rm -rf "$dest"; mkdir -p "$dest"
  local pom="$dest/.pom.xml" deps="" coord g a v t c
  for coord in "$@"; do
    IFS=: read -r g a v t c <<<"$coord"
    deps+="<dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version>"
    [ -n "$t" ] && deps+="<type>$t</type>"
    [ -n "$c" ] && deps+="<classifier>$c</classifier>"
    deps+="</dependency>"
  done
  cat >"$pom" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>local.alpes</groupId><artifactId>engines-fetch</artifactId><version>1</version><packaging>pom</packaging>
<dependencies>$deps</dependencies></project>
POM
  log "fetching $* from Maven Central (once; cached in $dest)"
  if ! mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest" >"$dest/.mvn.log" 2>&1; then
    tail -n 30 "$dest/.mvn.log" >&2
    die "Maven could not fetch $*"
  fi
  touch "$dest/.complete"
}

# write_launcher DIR INSTANCE COMMAND...: DIR/run/INSTANCE.sh execs COMMAND (each word quoted).
write_launcher() {
  local dir="$1" inst="$2"; shift 2
  mkdir -p "$dir/run" "$dir/pids" "$dir/logs"
  {
    printf '#!/usr/bin/env bash\n'
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
  } >"$dir/run/$inst.sh"
  chmod +x "$dir/run/$inst.sh"
}

pid_of() { cat "$1/pids/$2.pid" 2>/dev/null || true; }

running() {
  local pid; pid="$(pid_of "$1" "$2")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# launch DIR INSTANCE: starts DIR/run/INSTANCE.sh detached unless it runs already.
launch() {
  local dir="$1" inst="$2"
  [ -x "$dir/run/$inst.sh" ] || die "unknown instance $inst (no $dir/run/$inst.sh)"
  if running "$dir" "$inst"; then
    log "$inst runs already (pid $(pid_of "$dir" "$inst"))"
    return 0
  fi
  setsid nohup "$dir/run/$inst.sh" >>"$dir/logs/$inst.log" 2>&1 </dev/null &
  echo $! >"$dir/pids/$inst.pid"
  log "$inst started (pid $!, log $dir/logs/$inst.log)"
}

# halt DIR INSTANCE [SIGNAL]: signals the instance's process group (TERM by
# default, KILL after 60 s) and waits until it is gone; removes its PID file.
halt() {
  local dir="$1" inst="$2" sig="${3:-TERM}" pid i
  pid="$(pid_of "$dir" "$inst")"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$dir/pids/$inst.pid"
    return 0
  fi
  kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
  for i in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    [ "$i" = 600 ] && { log "$inst did not stop in 60 s: KILL"; kill -KILL -- "-$pid" 2>/dev/null || true; }
    sleep 0.1
  done
  rm -f "$dir/pids/$inst.pid"
  log "$inst stopped ($sig)"
}

# wait_until DIR INSTANCE SECONDS CHECK...: runs CHECK until it succeeds; fails
# with the log's tail when the instance exits or the time is up.
wait_until() {
  local dir="$1" inst="$2" secs="$3"; shift 3
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    if ! running "$dir" "$inst"; then
      tail -n 40 "$dir/logs/$inst.log" >&2 || true
      die "$inst exited before it was ready (log: $dir/logs/$inst.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$dir/logs/$inst.log" >&2 || true
      die "$inst was not ready in ${secs}s (log: $dir/logs/$inst.log)"
    fi
    sleep 0.5
  done
}

# port_open HOST PORT: a TCP connection succeeds.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# http_ok URL: the URL answers 2xx.
http_ok() { curl -fsS -o /dev/null --max-time 5 "$1"; }
