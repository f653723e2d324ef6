#!/usr/bin/env bash
# Real engines for Alpes as plain processes on 127.0.0.1, with their state
# under one directory: Apache Kafka 4.x (KRaft, 3 brokers), Apache Cassandra
# 5.0 (the CQL stand-in for ScyllaDB), an S3 server (versitygw, or SeaweedFS
# with ALPES_S3_SERVER=seaweedfs) and an Apicurio Registry (Confluent API).
#
#   engines.sh start DIR [--cql-nodes 1|3] [--only kafka,cql,s3,registry]
#       Fetches what is missing (cached under $ALPES_ENGINES_CACHE, default
#       ~/.cache/alpes-engines), starts every instance, waits until each one
#       answers, and prints `export NAME=value` lines for alpes on stdout
#       (progress goes to stderr): eval "$(deploy/local/engines.sh start DIR)".
#   engines.sh fetch [--only ...] downloads and builds what start needs into the
#                                cache, starting nothing (CI runs it early)
#   engines.sh stop DIR          stops what start started, by its PID files
#   engines.sh env DIR           prints the export lines again
#   engines.sh status DIR        one line per instance: running or stopped
#   engines.sh kill DIR INST     SIGKILL one instance (e.g. kafka-2): a crash
#   engines.sh halt DIR INST     SIGTERM one instance and wait until it exits
#   engines.sh resume DIR INST   start one instance again and wait until it answers
#   engines.sh kafka-tool DIR CLASS ARGS...
#                                runs a Kafka tool class from the broker's jars, e.g.
#                                org.apache.kafka.tools.ProducerPerformance (the
#                                kafka-producer-perf-test of the distribution)
#
# Instances: kafka-1..3, cql-1..N, s3, registry. Ports are fixed (see
# deploy/local/README.md); the addresses are all on 127.0.0.1 (127.0.0.2 and
# 127.0.0.3 for the second and third CQL node).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=engines/common.sh
. "$here/engines/common.sh"

ALL_ENGINES="kafka cql s3 registry"

# use_parts ENGINE...: sources each engine's part (deploy/local/engines/<engine>.sh).
use_parts() {
  local part
  for part in "$@"; do
    case " $ALL_ENGINES " in *" $part "*) ;; *) die "unknown engine $part (one of: $ALL_ENGINES)" ;; esac
    # shellcheck disable=SC1090
    . "$here/engines/$part.sh"
  done
}

usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# engine_of INSTANCE: kafka-2 -> kafka, s3 -> s3.
engine_of() { printf '%s\n' "${1%%-*}"; }

load_conf() {
  [ -f "$1/engines.conf" ] || die "$1 holds no engines (run: engines.sh start $1)"
  # shellcheck disable=SC1091
  . "$1/engines.conf"
  # shellcheck disable=SC2086
  use_parts $ENGINES
}

instances_of() { "${1}_instances" "$2"; }

ready_one() {
  local dir="$1" inst="$2" eng
  eng="$(engine_of "$inst")"
  wait_until "$dir" "$inst" "$("${eng}_ready_timeout")" "${eng}_ready" "$dir" "$inst"
  log "$inst ready"
}

cmd_start() {
  local dir="" only="$ALL_ENGINES" cql_nodes=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --cql-nodes) cql_nodes="${2:?--cql-nodes needs 1 or 3}"; shift 2 ;;
      --only) only="${2:?--only needs a list}"; only="${only//,/ }"; shift 2 ;;
      -*) die "unknown option $1" ;;
      *) [ -z "$dir" ] || die "one DIR only"; dir="$1"; shift ;;
    esac
  done
  [ -n "$dir" ] || usage
  case "$cql_nodes" in 1|2|3) ;; *) die "--cql-nodes takes 1, 2 or 3" ;; esac
  local eng inst
  # shellcheck disable=SC2086
  use_parts $only
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/engines.conf" ]; then
    # shellcheck disable=SC1091
    . "$dir/engines.conf"
    [ "${CQL_NODES:-$cql_nodes}" = "$cql_nodes" ] || die "$dir was started with --cql-nodes $CQL_NODES; stop it and use a new DIR"
  fi
  printf 'ENGINES=%q\nCQL_NODES=%q\n' "$only" "$cql_nodes" >"$dir/engines.conf"
  CQL_NODES="$cql_nodes"
  for eng in $only; do "${eng}_prepare" "$dir"; done
  for eng in $only; do
    for inst in $(instances_of "$eng" "$dir"); do
      launch "$dir" "$inst"
      # Engines whose nodes must join one at a time (Cassandra) wait for each.
      if "${eng}_serial"; then ready_one "$dir" "$inst"; fi
    done
  done
  for eng in $only; do
    if ! "${eng}_serial"; then
      for inst in $(instances_of "$eng" "$dir"); do ready_one "$dir" "$inst"; done
    fi
    "${eng}_post" "$dir"
  done
  log "all engines ready in $dir"
  cmd_env "$dir"
}

cmd_fetch() {
  local only="$ALL_ENGINES" eng
  while [ $# -gt 0 ]; do
    case "$1" in
      --only) only="${2:?--only needs a list}"; only="${only//,/ }"; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  # shellcheck disable=SC2086
  use_parts $only
  for eng in $only; do "${eng}_download"; done
  log "fetched: $only (cache: $ENGINES_CACHE)"
}

cmd_env() {
  local dir="$1" eng
  load_conf "$dir"
  for eng in $ENGINES; do "${eng}_env" "$dir"; done
}

cmd_stop() {
  local dir="$1" f
  [ -d "$dir/pids" ] || { log "nothing recorded under $dir"; return 0; }
  for f in "$dir"/pids/*.pid; do
    [ -e "$f" ] || continue
    halt "$dir" "$(basename "$f" .pid)" TERM &
  done
  wait
}

cmd_status() {
  local dir="$1" eng inst
  load_conf "$dir"
  for eng in $ENGINES; do
    for inst in $(instances_of "$eng" "$dir"); do
      if running "$dir" "$inst"; then echo "$inst running $(pid_of "$dir" "$inst")"; else echo "$inst stopped"; fi
    done
  done
}

[ $# -ge 1 ] || usage
command="$1"; shift
[ "$command" = fetch ] || [ $# -ge 1 ] || usage
case "$command" in
  fetch) cmd_fetch "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$1" ;;
  env) cmd_env "$1" ;;
  status) cmd_status "$1" ;;
  kill) [ $# = 2 ] || usage; load_conf "$1"; halt "$1" "$2" KILL ;;
  halt) [ $# = 2 ] || usage; load_conf "$1"; halt "$1" "$2" TERM ;;
  resume) [ $# = 2 ] || usage; load_conf "$1"; launch "$1" "$2"; ready_one "$1" "$2" ;;
  kafka-tool) [ $# -ge 2 ] || usage; use_parts kafka; kafka_run_class "$@" ;;
  *) usage ;;
esac
