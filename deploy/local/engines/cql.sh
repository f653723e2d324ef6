# shellcheck shell=bash
# CQL part of deploy/local/engines.sh: Apache Cassandra 5.0 (cassandra-all from
# Maven Central, run by its main class on Java 17) as the stand-in for ScyllaDB.
# Owns $ENGINES_CACHE/cql (the jars) and DIR/cql/node-I: cassandra.yaml,
# logback.xml, logs/system.log (INFO) and the data, commitlog, hints and caches
# of node I. Instances cql-1..cql-$CQL_NODES; node I listens on 127.0.0.I
# (CQL 9042, storage 7000), its JMX on 127.0.0.1:7199+100*(I-1); node 1 is the
# seed. Nodes join one at a time. Heap per node: ALPES_CQL_HEAP (default 1G).

CQL_CASSANDRA_VERSION=5.0.9 # newest 5.0.x on Maven Central (Dec 2026)

cql_instances() { seq -f 'cql-%g' -s ' ' 1 "${CQL_NODES:-1}"; }
cql_serial() { return 0; }
cql_ready_timeout() { echo 240; }

# The flags of Cassandra's conf/jvm-server.options and conf/jvm17-server.options
# (5.0 branch) plus the JDK-only ones bin/cassandra.in.sh adds; left out on
# purpose: -XX:+AlwaysPreTouch (touches all the heap at start) and -XX:+UseNUMA.
_cql_jvm_flags() {
  local m
  printf '%s\n' -ea -da:net.openhft... -XX:+UseThreadPriorities -XX:+HeapDumpOnOutOfMemoryError -Xss256k \
    -XX:+UseTLAB -XX:+ResizeTLAB -XX:+PerfDisableSharedMem -Djava.net.preferIPv4Stack=true \
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=16m \
    -XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300 -XX:InitiatingHeapOccupancyPercent=70 \
    -Djdk.attach.allowAttachSelf=true -Dio.netty.tryReflectionSetAccessible=true \
    -Dio.netty.allocator.useCacheForAllThreads=true -Dio.netty.allocator.maxOrder=11
  for m in java.base/jdk.internal.misc java.management.rmi/com.sun.jmx.remote.internal.rmi \
    java.management/com.sun.jmx.remote.security java.rmi/sun.rmi.registry java.rmi/sun.rmi.server \
    java.sql/java.sql java.base/java.lang.ref jdk.unsupported/sun.misc jdk.attach/sun.tools.attach \
    jdk.compiler/com.sun.tools.javac.file; do
    printf -- '--add-exports\n%s=ALL-UNNAMED\n' "$m"
  done
  for m in java.lang.module jdk.internal.loader jdk.internal.ref jdk.internal.reflect jdk.internal.math \
    jdk.internal.module jdk.internal.util.jar sun.nio.ch java.io java.lang.reflect java.lang java.util java.nio; do
    printf -- '--add-opens\njava.base/%s=ALL-UNNAMED\n' "$m"
  done
  printf -- '--add-opens\n%s=ALL-UNNAMED\n' jdk.management/com.sun.management.internal jdk.compiler/com.sun.tools.javac
}

# _cql_yaml I: cassandra.yaml of node I. Keys and defaults: conf/cassandra.yaml of 5.0.
_cql_yaml() {
  cat <<YAML
# Written by deploy/local/engines/cql.sh on every start; edits are lost.
cluster_name: alpes-local
num_tokens: 16
allocate_tokens_for_local_replication_factor: 3
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:7000"
listen_address: 127.0.0.$1
rpc_address: 127.0.0.$1
storage_port: 7000
native_transport_port: 9042
start_native_transport: true
# A fresh cluster has nothing to stream; a restarted node keeps its saved tokens and data.
auto_bootstrap: false
commitlog_sync: periodic
# A fresh 5.0 cluster (the shipped yaml says CASSANDRA_4, for upgrades): 5.0 sstable and
# messaging formats, and TTLs may expire after 2038 (CASSANDRA_4 rejects those).
storage_compatibility_mode: NONE
commitlog_sync_period: 10000ms
# Tests drop and truncate tables often: no snapshot of each (ScyllaDB's default is true).
auto_snapshot: false
# ScyllaDB's batch limits (128 KiB warn, 1 MiB fail); Cassandra's are 5 KiB and 50 KiB.
batch_size_warn_threshold: 128KiB
batch_size_fail_threshold: 1024KiB
# Three JVM nodes share this machine's 2 cores with Kafka and the services: a Paxos round
# queues behind GC and compaction, and at the defaults (1 s contention, 2 s writes, 5 s
# reads) concurrent lightweight transactions on one partition timed out on 3 nodes. These
# are a test cluster's timeouts, not advice for production.
cas_contention_timeout: 10000ms
write_request_timeout: 10000ms
read_request_timeout: 10000ms
range_request_timeout: 10000ms
# Guardrails Alpes relies on (these are the defaults, stated so nobody turns them off).
user_timestamps_enabled: true
simplestrategy_enabled: true
secondary_indexes_enabled: true
YAML
}

# _cql_logback NODE_DIR: INFO to NODE_DIR/logs/system.log (rolled), WARN and up also to
# stdout, which engines.sh appends to DIR/logs/cql-I.log.
_cql_logback() {
  cat <<XML
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>$1/logs/system.log</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
      <fileNamePattern>$1/logs/system.log.%i.zip</fileNamePattern>
      <minIndex>1</minIndex><maxIndex>5</maxIndex>
    </rollingPolicy>
    <triggeringPolicy class="ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy">
      <maxFileSize>50MB</maxFileSize>
    </triggeringPolicy>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <filter class="ch.qos.logback.classic.filter.ThresholdFilter"><level>WARN</level></filter>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/><appender-ref ref="STDOUT"/></root>
</configuration>
XML
}

# cassandra-all and its dependencies, into the cache (once).
cql_download() {
  mvn_fetch "$ENGINES_CACHE/cql/cassandra-$CQL_CASSANDRA_VERSION" "org.apache.cassandra:cassandra-all:$CQL_CASSANDRA_VERSION"
}

cql_prepare() {
  local dir="$1" lib java jamm i node flags
  lib="$ENGINES_CACHE/cql/cassandra-$CQL_CASSANDRA_VERSION"
  cql_download
  java="$(java17)"
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to probe Cassandra (cql_ready)"
  jamm="$(find "$lib" -maxdepth 1 -name 'jamm-*.jar' | head -n 1)"
  [ -n "$jamm" ] || die "no jamm jar in $lib"
  mapfile -t flags < <(_cql_jvm_flags)
  # As root, CassandraDaemon's mlockall succeeds and faults in the whole heap (RSS 1.5 GiB,
  # 7 s more at start); without CAP_IPC_LOCK it fails under the 8 MiB RLIMIT_MEMLOCK and
  # Cassandra only warns. There is no swap to protect against here.
  local nolock=()
  if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    nolock=(setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock)
  fi
  for i in $(seq 1 "${CQL_NODES:-1}"); do
    node="$dir/cql/node-$i"
    mkdir -p "$node/logs" "$node/triggers"
    _cql_yaml "$i" >"$node/cassandra.yaml"
    _cql_logback "$node" >"$node/logback.xml"
    # jamm measures object sizes (cassandra-env.sh); JMX is local only, one port per node.
    # skip_wait_for_gossip_to_settle=0 skips the wait for gossip to settle at every start;
    # ring_delay_ms=5000: a node's first start otherwise waits the whole 30 s ring delay
    # for a non-empty schema (StorageService.waitForSchema), which a fresh cluster never
    # has (it also bounds the shadow round at restart and fat-client eviction, 5 s is ample).
    write_launcher "$dir" "cql-$i" "${nolock[@]}" "$java" "${flags[@]}" -XX:+ExitOnOutOfMemoryError \
      "-Xms${ALPES_CQL_HEAP:-1G}" "-Xmx${ALPES_CQL_HEAP:-1G}" "-XX:HeapDumpPath=$node" "-javaagent:$jamm" \
      "-Dcassandra.config=file://$node/cassandra.yaml" "-Dcassandra.storagedir=$node" \
      "-Dcassandra.logdir=$node/logs" "-Dcassandra.triggers_dir=$node/triggers" -Dcassandra-foreground=yes \
      "-Dlogback.configurationFile=$node/logback.xml" "-Dcassandra.jmx.local.port=$((7199 + 100 * (i - 1)))" \
      -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=5000 \
      -cp "$lib/*" org.apache.cassandra.service.CassandraDaemon
  done
}

# _cql_query HOST CQL [CONSISTENCY]: runs CQL over the native protocol (v4, Python's
# standard library only) at ONE (1) or the consistency code given (5 = ALL), prints
# the rows, one a line, values tab-separated; fails with the server's error message.
_cql_query() {
  python3 - "$@" <<'PY'
import socket, struct, sys
s = socket.create_connection((sys.argv[1], 9042), timeout=3)
def recv(n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            sys.exit('connection closed')
        b += c
    return b
def call(op, body):
    s.sendall(struct.pack('>BBhBi', 4, 0, 1, op, len(body)) + body)
    _, _, _, rop, n = struct.unpack('>BBhBi', recv(9))
    return rop, recv(n)
def string(b):
    return struct.pack('>H', len(b)) + b
op, _ = call(1, struct.pack('>H', 1) + string(b'CQL_VERSION') + string(b'3.0.0'))
if op != 2:
    sys.exit('no READY')
q = sys.argv[2].encode()
cl = int(sys.argv[3]) if len(sys.argv) > 3 else 1
op, body = call(7, struct.pack('>i', len(q)) + q + struct.pack('>HB', cl, 0))
if op != 8:
    sys.exit(body[6:].decode(errors='replace'))
if struct.unpack_from('>i', body)[0] != 2:
    sys.exit(0)
flags, ncols = struct.unpack_from('>ii', body, 4)
p = 12
if flags & 2:
    p += 4 + max(struct.unpack_from('>i', body, p)[0], 0)
def skip_string(p):
    return p + 2 + struct.unpack_from('>H', body, p)[0]
if flags & 1:
    p = skip_string(skip_string(p))
def read_type(p):
    t = struct.unpack_from('>H', body, p)[0]
    p += 2
    if t == 0:
        p = skip_string(p)
    elif t in (0x20, 0x22):
        p = read_type(p)[1]
    elif t == 0x21:
        p = read_type(read_type(p)[1])[1]
    elif t >= 0x30:
        sys.exit('UDT and tuple columns are not decoded')
    return t, p
types = []
for _ in range(ncols):
    if not flags & 1:
        p = skip_string(skip_string(p))
    t, p = read_type(skip_string(p))
    types.append(t)
(nrows,) = struct.unpack_from('>i', body, p)
p += 4
for _ in range(nrows):
    out = []
    for t in types:
        (n,) = struct.unpack_from('>i', body, p)
        v = body[p + 4:p + 4 + max(n, 0)]
        p += 4 + max(n, 0)
        if n < 0:
            out.append('null')
        elif t == 0x10:
            out.append(socket.inet_ntop(socket.AF_INET if n == 4 else socket.AF_INET6, v))
        elif t in (1, 0x0d):
            out.append(v.decode())
        elif t == 4:
            out.append(str(v != b'\0').lower())
        else:
            out.append(v.hex())
    print('\t'.join(out))
PY
}

# _cql_all_up N: each of the N nodes lists the others in system.peers_v2 and, as
# coordinator, reads at consistency ALL from system_distributed (replication factor 3
# on 3 nodes), which fails at once while it holds any replica down.
_cql_all_up() {
  local n="$1" i
  [ "$n" -gt 1 ] || return 0
  for i in $(seq 1 "$n"); do
    [ "$(_cql_query "127.0.0.$i" "SELECT peer FROM system.peers_v2" | wc -l)" = $((n - 1)) ] || return 1
    _cql_query "127.0.0.$i" "SELECT id FROM system_distributed.repair_history
      WHERE keyspace_name = 'alpes' AND columnfamily_name = 'probe' LIMIT 1" 5 >/dev/null || return 1
  done
}

# Ready when a real query answers on that node; when every node of the cluster runs (the
# last node of a start, or a resume), also when all of them see each other up, so that
# RF N at QUORUM works at once and the next node may be halted.
cql_ready() {
  local dir="$1" inst="$2" i
  [ -n "$(_cql_query "127.0.0.${inst#cql-}" "SELECT release_version FROM system.local")" ] || return 1
  for i in $(seq 1 "${CQL_NODES:-1}"); do running "$dir" "cql-$i" || return 0; done
  _cql_all_up "${CQL_NODES:-1}"
}

# The last node's readiness covers it; checked once more (a node may have been stopped).
cql_post() {
  local deadline=$((SECONDS + 60))
  until _cql_all_up "${CQL_NODES:-1}" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || die "the ${CQL_NODES:-1} CQL nodes did not all see each other up in 60 s"
    sleep 0.5
  done
}

cql_env() {
  local n="${CQL_NODES:-1}" repl
  repl="{'class': 'SimpleStrategy', 'replication_factor': $n}"
  echo "export SCYLLA_NODES=$(seq -f '127.0.0.%g:9042' -s ',' 1 "$n")"
  echo "export SCYLLA_REPLICATION=\"$repl\""
  echo "export SCYLLA_TEST_REPLICATION=\"$repl\""
}
