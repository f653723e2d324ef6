# shellcheck shell=bash
# Part of deploy/local/engines.sh: Apache Kafka 4.x in KRaft mode, three
# combined broker+controller nodes (kafka-1..3) on 127.0.0.1, client listeners
# 19092/29092/39092, controllers 19093/29093/39093, a static quorum.
# Owns: the jar folder $ENGINES_CACHE/kafka/<version>/lib (Maven Central, once)
# and DIR/kafka/ (cluster.id, log4j2 configs, kafka-N/{server.properties,data,logs}).
# Also defines kafka_run_class DIR CLASS ARGS... to run a tool class (e.g.
# org.apache.kafka.tools.ProducerPerformance) from the same jar folder.

KAFKA_VERSION="${ALPES_KAFKA_VERSION:-4.4.0}"
# kafka-server 4.4.0 brings log4j-core 2.25.5 and slf4j-api 1.7.36, so the
# SLF4J 1.x binding log4j-slf4j-impl (not log4j-slf4j2-impl) at 2.25.5. The
# release tarball ships it (build.gradle `releaseOnly log4jReleaseLibs`); the POM does not.
KAFKA_LOG4J_VERSION="${ALPES_KAFKA_LOG4J_VERSION:-2.25.5}"
# Three brokers share 2 cores and 24 GiB with Cassandra, S3, a registry and the
# Rust services. With 512m each, RSS measured ~0.35-0.40 GiB idle and ~0.55-0.65 GiB
# after 500k x 1 KB acks=all records, no full GC. (kafka-server-start.sh uses -Xmx1G -Xms1G.)
KAFKA_HEAP="${ALPES_KAFKA_HEAP:--Xms512m -Xmx512m}"
# kafka-run-class.sh's default heap for tools.
KAFKA_TOOL_HEAP="${ALPES_KAFKA_TOOL_HEAP:--Xmx256m}"
# KAFKA_JVM_PERFORMANCE_OPTS of bin/kafka-run-class.sh (4.x).
KAFKA_JVM_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true)

kafka_lib() { printf '%s\n' "$ENGINES_CACHE/kafka/$KAFKA_VERSION/lib"; }

kafka_instances() { echo kafka-1 kafka-2 kafka-3; }
# All three start together: a lone node cannot finish startup without a quorum.
kafka_serial() { return 1; }
kafka_ready_timeout() { echo 120; }

# kafka_java DIR HEAP CLASS ARGS...: a tool JVM on the jar folder, WARN+ to stderr.
kafka_java() {
  local dir="$1" heap="$2"; shift 2
  local lib; lib="$(kafka_lib)"
  [ -f "$lib/.complete" ] || die "Kafka is not fetched yet (run: engines.sh start DIR --only kafka)"
  # shellcheck disable=SC2086
  "$(java17)" $heap "${KAFKA_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$dir/kafka/tools-log4j2.properties" \
    -cp "$lib/*" "$@"
}

# kafka_run_class DIR CLASS ARGS...: e.g. org.apache.kafka.tools.ProducerPerformance.
kafka_run_class() { local dir="$1"; shift; kafka_java "$dir" "$KAFKA_TOOL_HEAP" "$@"; }

kafka_write_log4j() {
  local k="$1"
  # Brokers: INFO to kafka-N/logs/server.log (100 MB x 3 files), WARN+ also to
  # stdout (DIR/logs/kafka-N.log). Loggers as in Kafka's config/log4j2.yaml, but
  # without its TRACE controller.log and the request log.
  cat >"$k/log4j2.properties" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 100MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.channel.name = kafka.network.RequestChannel$
logger.channel.level = warn
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
rootLogger.appenderRef.console.ref = STDOUT
EOF
  # Tools: WARN+ to stderr, as Kafka's config/tools-log4j2.yaml.
  cat >"$k/tools-log4j2.properties" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = STDERR
EOF
}

# kafka_write_props DIR N: DIR/kafka/kafka-N/server.properties.
kafka_write_props() {
  local dir="$1" n="$2" node="$1/kafka/kafka-$2"
  cat >"$node/server.properties" <<EOF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=1@127.0.0.1:19093,2@127.0.0.1:29093,3@127.0.0.1:39093
listeners=PLAINTEXT://127.0.0.1:${n}9092,CONTROLLER://127.0.0.1:${n}9093
advertised.listeners=PLAINTEXT://127.0.0.1:${n}9092,CONTROLLER://127.0.0.1:${n}9093
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$node/data
num.partitions=1
# Every topic, internal ones included, on all three brokers; acks=all needs two.
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
unclean.leader.election.enable=false
# Consumer groups form at once (default 3000 ms).
group.initial.rebalance.delay.ms=0
EOF
}

# The broker, its tools and the SLF4J binding, into the cache (once).
kafka_download() {
  mvn_fetch "$(kafka_lib)" "org.apache.kafka:kafka_2.13:$KAFKA_VERSION" "org.apache.kafka:kafka-tools:$KAFKA_VERSION" \
    "org.apache.logging.log4j:log4j-slf4j-impl:$KAFKA_LOG4J_VERSION"
}

kafka_prepare() {
  local dir="$1" k="$1/kafka" lib java n node cid p fmt=()
  lib="$(kafka_lib)"
  java="$(java17)"
  kafka_download
  mkdir -p "$k"
  kafka_write_log4j "$k"
  # One cluster id for the life of DIR: a restart reuses the formatted storage.
  if [ ! -s "$k/cluster.id" ]; then
    kafka_java "$dir" "$KAFKA_TOOL_HEAP" kafka.tools.StorageTool random-uuid >"$k/cluster.id.tmp"
    mv "$k/cluster.id.tmp" "$k/cluster.id"
  fi
  cid="$(cat "$k/cluster.id")"
  for n in 1 2 3; do
    node="$k/kafka-$n"
    mkdir -p "$node/data" "$node/logs"
    kafka_write_props "$dir" "$n"
    # Format once (meta.properties marks it), the three in parallel.
    if [ ! -f "$node/data/meta.properties" ]; then
      log "kafka-$n: formatting storage (cluster $cid)"
      kafka_java "$dir" "$KAFKA_TOOL_HEAP" kafka.tools.StorageTool format -t "$cid" \
        -c "$node/server.properties" --ignore-formatted >>"$node/logs/format.log" 2>&1 &
      fmt+=("$!:$n")
    fi
  done
  for p in ${fmt[@]+"${fmt[@]}"}; do
    wait "${p%%:*}" || die "kafka-${p#*:}: formatting failed (see $k/kafka-${p#*:}/logs/format.log)"
  done
  for n in 1 2 3; do
    node="$k/kafka-$n"
    # The launcher first moves the last run's server.log aside, so kafka_ready
    # never sees an old "Kafka Server started" line. GC log as kafka-server-start.sh's -loggc.
    # shellcheck disable=SC2086,SC2016
    write_launcher "$dir" "kafka-$n" /bin/bash -c 'mv -f "$1/server.log" "$1/server.log.prev" 2>/dev/null || true
shift; exec "$@"' kafka "$node/logs" \
      "$java" $KAFKA_HEAP "${KAFKA_JVM_OPTS[@]}" \
      "-Xlog:gc*:file=$node/logs/gc.log:time,tags:filecount=2,filesize=10M" \
      -Dkafka.logs.dir="$node/logs" -Dlog4j2.configurationFile="$k/log4j2.properties" \
      -cp "$lib/*" kafka.Kafka "$node/server.properties"
  done
}

# The client port answers and this run's server.log says startup finished,
# which BrokerServer reaches only after the controller unfenced the broker.
kafka_ready() {
  local dir="$1" inst="$2" n="${2#kafka-}"
  port_open 127.0.0.1 "${n}9092" &&
    grep -q 'Kafka Server started' "$dir/kafka/$inst/logs/server.log" 2>/dev/null
}

# Waits until ClusterTool list-endpoints (Admin describeCluster) shows the
# three brokers unfenced, so a topic with replication factor 3 can be created.
kafka_post() {
  local dir="$1" deadline=$((SECONDS + 60)) out=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    out="$(kafka_run_class "$dir" org.apache.kafka.tools.ClusterTool list-endpoints \
      --bootstrap-server 127.0.0.1:19092 2>&1)" || true
    if [ "$(grep -cE '^[123][[:space:]]+127\.0\.0\.1[[:space:]].*[[:space:]]unfenced[[:space:]]+broker' <<<"$out")" = 3 ]; then
      log "kafka: 3 brokers registered"
      return 0
    fi
    sleep 1
  done
  printf '%s\n' "$out" >&2
  die "kafka: the cluster did not list 3 brokers in 60 s"
}

kafka_env() {
  echo "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092"
  echo "export ALPES_KAFKA_REPLICATION=3"
}
