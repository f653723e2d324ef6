#!/usr/bin/env bash
# Producer throughput on the real 3-broker cluster: `alpes perf produce`
# against Apache Kafka's own kafka-producer-perf-test
# (org.apache.kafka.tools.ProducerPerformance, from org.apache.kafka:kafka-tools),
# with the same records, acks=all, alternating rounds, in one go.
#
#   cargo build --release --bin alpes      # target/release/alpes
#   bench/kafka/producer_vs_apache.sh [--records N] [--size BYTES] [--rounds R] [--partitions P]
#                                     [--apache-props "batch.size=1000000 ..."] [DIR]
#
# DIR (default /tmp/alpes-engines-bench) holds the engines of
# deploy/local/engines.sh: if its Kafka is not running, the script starts
# the three brokers there (--only kafka) and stops them at the end.
#
# The records are N lines of SIZE base32 characters in one file; both tools
# take it as --payload-file (the Java tool draws a random line per record,
# alpes streams the lines in order). Each round writes to two fresh topics
# (one per tool) of P partitions, replication factor 3,
# min.insync.replicas=2, created before the clock starts. Every other
# producer setting is each client's default (the Java client's batch.size
# 16 KiB and linger.ms 5, librdkafka's 1 MB and 5 ms), unless --apache-props
# gives the Java tool more producer properties (e.g. librdkafka's batch size,
# batch.size=1000000, to compare the clients at one batch size). Two rates per run:
# the tool's own summary line (first send to last acknowledgement) and N /
# the process wall time (which adds JVM start-up and the file read for Java,
# process start and connecting for both). Neither tool warms up. Results go
# to bench/results/producer-vs-apache-<date>.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh # log, die, payload_file, median, now, rate

records=1000000 size=512 rounds=5 partitions=6 apache_props=""
dir=/tmp/alpes-engines-bench
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --apache-props) apache_props=$2; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) dir=$1; shift ;;
  esac
done
alpes=${ALPES:-target/release/alpes}
[ -x "$alpes" ] || { echo "no $alpes: cargo build --release --bin alpes" >&2; exit 1; }
engines=deploy/local/engines.sh
# The Java tool keeps the whole payload file in memory (a byte[] per line).
export ALPES_KAFKA_TOOL_HEAP="${ALPES_KAFKA_TOOL_HEAP:--Xmx2g}"
work=${WORK:-/tmp/alpes-apache-bench}
mkdir -p "$work" bench/results
file=$work/records-$records-$size.txt
payload_file "$file" "$records" "$size"

started=""
# (The status is read whole first: grep -q closing the pipe early would fail it under pipefail.)
status=$("$engines" status "$dir" 2>/dev/null || true)
if ! grep -q '^kafka-1 running' <<<"$status"; then
  "$engines" start "$dir" --only kafka >/dev/null
  started=yes
fi
cleanup() { if [ -n "$started" ]; then "$engines" stop "$dir"; fi; }
trap cleanup EXIT
bootstrap=$("$engines" env "$dir" | sed -n 's/^export KAFKA_BOOTSTRAP_SERVERS=//p')
[ -n "$bootstrap" ] || { echo "no Kafka in $dir" >&2; exit 1; }

tool() { "$engines" kafka-tool "$dir" "$@"; }
create_topic() {
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create --topic "$1" \
    --partitions "$partitions" --replication-factor 3 --config min.insync.replicas=2 >/dev/null
}
# The records/sec of a kafka-producer-perf-test summary line (both tools print one).
own_rate() { sed -n 's/^[0-9]* records sent, \([0-9.]*\) records\/sec.*/\1/p' <<<"$1" | awk '{printf "%.0f", $1}'; }

load=$(cut -d' ' -f1-3 /proc/loadavg)
java_wall=() java_own=() alpes_wall=() alpes_own=() rows=()
for r in $(seq "$rounds"); do
  jt="apache-$r-$$" at="alpes-$r-$$"
  create_topic "$jt"
  create_topic "$at"
  t0=$(now)
  # shellcheck disable=SC2086 # $apache_props is a list of key=value words
  js=$(tool org.apache.kafka.tools.ProducerPerformance --topic "$jt" --num-records "$records" \
    --payload-file "$file" --throughput -1 --producer-props bootstrap.servers="$bootstrap" acks=all $apache_props | tail -n1)
  t1=$(now)
  jw=$(rate "$records" "$t0" "$t1") jo=$(own_rate "$js")
  t0=$(now)
  as=$("$alpes" perf produce --bootstrap-server "$bootstrap" --topic "$at" --num-records "$records" \
    --payload-file "$file" --throughput -1 --producer-props acks=all | tail -n1)
  t1=$(now)
  aw=$(rate "$records" "$t0" "$t1") ao=$(own_rate "$as")
  if [ -z "$jo" ] || [ -z "$ao" ]; then die "round $r: no summary line (java: $js; alpes: $as)"; fi
  java_wall+=("$jw") java_own+=("$jo") alpes_wall+=("$aw") alpes_own+=("$ao")
  rows+=("| $r | $jo | $jw | $ao | $aw |")
  echo "round $r: apache $jo rec/s ($jw wall), alpes $ao rec/s ($aw wall)" >&2
done
jom=$(median "${java_own[@]}") jwm=$(median "${java_wall[@]}")
aom=$(median "${alpes_own[@]}") awm=$(median "${alpes_wall[@]}")
ratio_own=$(python3 -c "print(f'{$aom / $jom:.3f}')")
ratio_wall=$(python3 -c "print(f'{$awm / $jwm:.3f}')")
kafka_version=$(tool org.apache.kafka.tools.TopicCommand --version 2>/dev/null | head -n1 | cut -d' ' -f1)
apache_defaults="none (the Java client's defaults)"
out=bench/results/producer-vs-apache-$(date +%F)${apache_props:+-props}.md
{
  echo "# alpes perf produce vs kafka-producer-perf-test, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p')."
  echo "Cluster: Apache Kafka ${kafka_version:-4.x}, KRaft, 3 brokers on 127.0.0.1 ($bootstrap), deploy/local/engines.sh, sharing the cores with both clients."
  echo "Java tool: org.apache.kafka.tools.ProducerPerformance ($ALPES_KAFKA_TOOL_HEAP, $(java -version 2>&1 | head -n1)). alpes: commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)'), librdkafka $(sed -n '/^name = "rdkafka-sys"/{n;s/.*+\([0-9.]*\)".*/\1/p}' Cargo.lock), release profile."
  echo "Load average before the runs: $load."
  echo "Records: $records x $size bytes ($file); acks=all; topics of $partitions partitions, RF 3, min.insync.replicas 2; $rounds alternating rounds."
  echo "Producer properties besides acks=all: Apache: ${apache_props:-$apache_defaults}; alpes: none (librdkafka's defaults)."
  echo
  echo "| round | Apache rec/s (own clock) | Apache rec/s (wall) | alpes rec/s (own clock) | alpes rec/s (wall) |"
  echo "|---|--:|--:|--:|--:|"
  printf '%s\n' "${rows[@]}"
  echo "| **median** | **$jom** | **$jwm** | **$aom** | **$awm** |"
  echo
  echo "Ratio alpes / Apache: **$ratio_own** on each tool's own clock, **$ratio_wall** on wall time."
  echo
  echo "Commands (R = round):"
  echo
  echo "    deploy/local/engines.sh kafka-tool $dir org.apache.kafka.tools.ProducerPerformance --topic apache-R --num-records $records --payload-file $file --throughput -1 --producer-props bootstrap.servers=$bootstrap acks=all${apache_props:+ $apache_props}"
  echo "    $alpes perf produce --bootstrap-server $bootstrap --topic alpes-R --num-records $records --payload-file $file --throughput -1 --producer-props acks=all"
} | tee "$out"
