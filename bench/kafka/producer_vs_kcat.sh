#!/usr/bin/env bash
# Producer throughput: `alpes perf produce` against `kcat -P`, on the same
# broker, with the same records, alternating runs, in one go.
#
#   cargo build --release --bin alpes      # target/release/alpes
#   apt-get install kcat                   # Debian's kcat (librdkafka 2.0.2)
#   bench/kafka/producer_vs_kcat.sh [--records N] [--size BYTES] [--rounds R] [--acks all]
#
# The broker is `alpes perf broker`: librdkafka's mock cluster in its own
# process on 127.0.0.1, which both clients reach over TCP. The records are
# N lines of SIZE base32 characters in one file; kcat sends each line once
# (stdin, newline-delimited), and alpes draws N records from the same file
# (--payload-file, as kafka-producer-perf-test does). Each side's throughput
# is N / its process wall time (start to exit, which includes connecting,
# reading the file and waiting for every acknowledgement), so neither gets
# the benefit of its own clock. The rounds alternate kcat and alpes, each to
# a fresh topic; the table gives every run and the medians, and the ratio
# alpes / kcat. Results go to bench/results/producer-vs-kcat-<date>.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh # log, die, payload_file, median, now, rate

records=1000000 size=512 rounds=3 acks=all
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --acks) acks=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
alpes=${ALPES:-target/release/alpes}
[ -x "$alpes" ] || { echo "no $alpes: cargo build --release --bin alpes" >&2; exit 1; }
command -v kcat >/dev/null || { echo "no kcat: apt-get install kcat" >&2; exit 1; }
work=${WORK:-/tmp/alpes-kcat-bench}
mkdir -p "$work" bench/results
file=$work/records-$records-$size.txt
payload_file "$file" "$records" "$size"

load=$(cut -d' ' -f1-3 /proc/loadavg)
"$alpes" perf broker > "$work/broker.out" &
broker=$!
trap 'kill $broker 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$work/broker.out" ] && break; sleep 0.1; done
bootstrap=$(head -n1 "$work/broker.out")

kcat_rates=() alpes_rates=() rows=()
for r in $(seq "$rounds"); do
  t0=$(now)
  kcat -P -b "$bootstrap" -t "kcat-$r-$$" -X acks="$acks" < "$file"
  t1=$(now)
  kr=$(rate "$records" "$t0" "$t1")
  t0=$(now)
  summary=$("$alpes" perf produce --bootstrap-server "$bootstrap" --topic "alpes-$r-$$" --num-records "$records" \
    --payload-file "$file" --throughput -1 --producer-props acks="$acks" | tail -n1)
  t1=$(now)
  ar=$(rate "$records" "$t0" "$t1")
  kcat_rates+=("$kr") alpes_rates+=("$ar")
  rows+=("| $r | $kr | $ar | $summary |")
  echo "round $r: kcat $kr rec/s, alpes $ar rec/s  ($summary)" >&2
done
km=$(median "${kcat_rates[@]}") am=$(median "${alpes_rates[@]}")
ratio=$(python3 -c "print(f'{$am / $km:.3f}')")
out=bench/results/producer-vs-kcat-$(date +%F).md
{
  echo "# alpes perf produce vs kcat -P, $(date -u '+%F %H:%M UTC')"
  echo
  echo "Machine: $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(lscpu | sed -n 's/^Model name: *//p')."
  echo "Broker: \`alpes perf broker\` (librdkafka mock cluster, 1 broker) at $bootstrap."
  echo "kcat: $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\) .*librdkafka \([^ ]*\).*/kcat \1 (Debian), librdkafka \2/p'). alpes: commit $(git rev-parse --short HEAD), librdkafka $(sed -n '/^name = "rdkafka-sys"/{n;s/.*+\([0-9.]*\)".*/\1/p}' Cargo.lock) (rdkafka-sys, built from source), release profile."
  echo "Load average before the runs: $load."
  echo "Records: $records x $size bytes ($file); acks=$acks; $rounds alternating rounds, a fresh topic each."
  echo
  echo "| round | kcat -P rec/s (wall) | alpes perf produce rec/s (wall) | alpes summary line |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Median: kcat $km rec/s, alpes $am rec/s; ratio alpes / kcat = **$ratio**."
  echo
  echo "Commands:"
  echo
  echo "    kcat -P -b $bootstrap -t kcat-R -X acks=$acks < $file"
  echo "    $alpes perf produce --bootstrap-server $bootstrap --topic alpes-R --num-records $records --payload-file $file --throughput -1 --producer-props acks=$acks"
} | tee "$out"
