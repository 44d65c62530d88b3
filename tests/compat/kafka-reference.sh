#!/usr/bin/env bash
# Starts Apache Kafka (KRaft, one combined broker+controller node) on loopback
# from the jars on Maven Central, so the compatibility suite can be run against
# the reference implementation:
#
#   eval "$(tests/compat/kafka-reference.sh start)"    # exports KAFKA_BOOTSTRAP, KAFKA_REF_PID
#   tests/compat/run.sh                                # the suite against Kafka
#   tests/compat/kafka-reference.sh stop               # SIGTERM by PID, waits
#
# Not used by CI. Jars go to ~/.m2 (Maven's cache) and /tmp only; nothing here
# is committed. Needs java (17+) and mvn.
#
# Environment: KAFKA_VERSION (default 4.4.0, the newest 4.x on Maven Central), KAFKA_REF_DIR (default
# /tmp/vltava-kafka-ref-$KAFKA_VERSION), KAFKA_PORT (default: a free port),
# KAFKA_EXTRA_PROPS (lines appended to server.properties, e.g. "broker.rack=rack-a").
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
REF_DIR="${KAFKA_REF_DIR:-/tmp/vltava-kafka-ref-$KAFKA_VERSION}"
LIBS="$REF_DIR/libs"
RUN="$REF_DIR/run"
PIDFILE="$REF_DIR/kafka.pid"

log() { echo "kafka-reference: $*" >&2; }

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

fetch_jars() {
  if [ -f "$LIBS/.complete" ]; then return; fi
  mkdir -p "$REF_DIR"
  cat >"$REF_DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.vltava</groupId>
  <artifactId>kafka-reference</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- log4j2 backend for the slf4j API the broker logs through (the
         distribution's libs/ ships these; kafka_2.13's pom does not pull them) -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>2.0.17</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
POM
  log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies with Maven"
  rm -rf "$LIBS"
  mvn -q -B -f "$REF_DIR/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS" >&2
  touch "$LIBS/.complete"
}

start() {
  fetch_jars
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "already running (pid $(cat "$PIDFILE"))"; cat "$REF_DIR/env"; return
  fi
  rm -rf "$RUN"; mkdir -p "$RUN/logs"
  local port="${KAFKA_PORT:-$(free_port)}" cport
  cport="$(free_port)"
  while [ "$cport" = "$port" ]; do cport="$(free_port)"; done
  cat >"$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$RUN/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  if [ -n "${KAFKA_EXTRA_PROPS:-}" ]; then printf '%s\n' "$KAFKA_EXTRA_PROPS" >>"$RUN/server.properties"; fi
  cat >"$RUN/log4j2.properties" <<L4J
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $RUN/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
L4J
  local cp="$LIBS/*"
  local jopts=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$RUN/log4j2.properties"
    -Dkafka.logs.dir="$RUN/logs")
  local cluster_id
  cluster_id="$(java "${jopts[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$RUN/logs/format.err" | tail -1)"
  java "${jopts[@]}" -cp "$cp" kafka.tools.StorageTool format \
    -t "$cluster_id" -c "$RUN/server.properties" >"$RUN/logs/format.out" 2>>"$RUN/logs/format.err"
  log "formatted $RUN/data (cluster $cluster_id); starting Kafka $KAFKA_VERSION on 127.0.0.1:$port"
  nohup java "${jopts[@]}" -cp "$cp" kafka.Kafka "$RUN/server.properties" \
    >"$RUN/logs/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDFILE"
  local deadline=$((SECONDS + 90))
  until grep -q "Kafka Server started" "$RUN/logs/server.log" 2>/dev/null \
      && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "Kafka exited during start-up:"; tail -50 "$RUN/logs/stdout.log" "$RUN/logs/server.log" >&2 || true; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then log "Kafka did not start within 90 s"; stop; exit 1; fi
    sleep 0.5
  done
  printf 'export KAFKA_BOOTSTRAP=127.0.0.1:%s\nexport KAFKA_REF_PID=%s\nexport KAFKA_REF_VERSION=%s\n' \
    "$port" "$pid" "$KAFKA_VERSION" | tee "$REF_DIR/env"
  log "ready (pid $pid, logs in $RUN/logs)"
}

stop() {
  [ -f "$PIDFILE" ] || { log "not running"; return 0; }
  local pid; pid="$(cat "$PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then log "pid $pid ignored SIGTERM for 30 s; SIGKILL"; kill -KILL "$pid"; fi
  fi
  rm -f "$PIDFILE" "$REF_DIR/env"
  log "stopped (pid $pid)"
}

case "${1:-}" in
  fetch) fetch_jars; ls "$LIBS" | wc -l >&2 ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 fetch|start|stop" >&2; exit 2 ;;
esac
