#!/usr/bin/env bash
# Vltava vs Apache Kafka on this machine, same client (Kafka's own Java perf
# tools), same client settings, one broker after the other. Rewrites
# BENCHMARKS.md and bench/chart.png. Never run in CI (it is long).
#
#   bench/run.sh                       # full run: 2M x 1 KiB, 10 GiB recovery
#   BENCH_SCALE=smoke bench/run.sh     # a few minutes: 100k records, 100 MiB recovery
#
# Environment (all optional):
#   BENCH_SCALE        full | smoke                             (default full)
#   BENCH_RECORDS      records for produce/consume              (2000000 | 100000)
#   BENCH_RECOVERY_MB  MiB in the log before kill -9            (10240 | 100)
#   BENCH_LAT_SECONDS  length of the fixed-rate latency run     (30 | 5)
#   BENCH_LAT_RATE     msgs/s of that run (default: half of Kafka's peak produce rate)
#   BENCH_RK_LAT_RATE  msgs/s of the librdkafka fixed-rate run (default: half of Kafka's librdkafka peak)
#   BENCH_E2E_RECORDS  EndToEndLatency round trips              (10000 | 1000)
#   BENCH_MANY_RATE    msgs/s into the 1,000-partition topic    (10000)
#   BENCH_MANY_SECONDS length of that run                       (20 | 5)
#   BENCH_SYSTEMS      which to run        (default "kafka vltava-fsync vltava-pagecache")
#   BENCH_RECOVERY_SYSTEMS  which get the kill -9 test (default "kafka vltava-fsync")
#   BENCH_PROFILE      1 = perf record -g of Vltava during an extra produce run (default 1)
#   BENCH_PIN          1 = taskset the broker on one CPU, clients on another (default 1 if >= 2 cores)
#   BENCH_BROKER_CPU   the broker's CPU (default: the one that takes the data disk's interrupts, else 0)
#   BENCH_WORK         scratch dir for data and logs   (default /tmp/vltava-bench)
#   BENCH_ONLY_RECOVERY  1 = start-up and phase 6 only (e.g. a 10 GiB recovery run on its own)
#   BENCH_RESULTS      write results and the report there instead of bench/results and BENCHMARKS.md
#   KAFKA_VERSION      broker (default 4.4.0); KAFKA_TOOLS_VERSION perf tools (default 4.3.1)
#
# Every process it starts is stopped by its PID, also on error or Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"
SCALE="${BENCH_SCALE:-full}"
case "$SCALE" in
  full)  d_records=2000000; d_rec_mb=10240; d_lat_s=30; d_e2e=10000; d_many_s=20 ;;
  smoke) d_records=100000;  d_rec_mb=100;   d_lat_s=5;  d_e2e=1000;  d_many_s=5 ;;
  *) echo "BENCH_SCALE must be full or smoke" >&2; exit 2 ;;
esac
RECORDS="${BENCH_RECORDS:-$d_records}"
RECOVERY_MB="${BENCH_RECOVERY_MB:-$d_rec_mb}"
LAT_SECONDS="${BENCH_LAT_SECONDS:-$d_lat_s}"
E2E_RECORDS="${BENCH_E2E_RECORDS:-$d_e2e}"
MANY_RATE="${BENCH_MANY_RATE:-10000}"
MANY_SECONDS="${BENCH_MANY_SECONDS:-$d_many_s}"
SYSTEMS="${BENCH_SYSTEMS:-kafka vltava-fsync vltava-pagecache}"
RECOVERY_SYSTEMS="${BENCH_RECOVERY_SYSTEMS-kafka vltava-fsync}"
PROFILE="${BENCH_PROFILE:-1}"
ONLY_RECOVERY="${BENCH_ONLY_RECOVERY:-0}"
WORK="${BENCH_WORK:-/tmp/vltava-bench}"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_TOOLS_VERSION="${KAFKA_TOOLS_VERSION:-4.3.1}"
RECORD_SIZE=1024
PARTITIONS=8
MANY_PARTITIONS=1000
if [ "${BENCH_PIN:-}" = "" ]; then
  if [ "$(nproc)" -ge 2 ]; then BENCH_PIN=1; else BENCH_PIN=0; fi
fi
# The CPU that takes the data disk's I/O completions, if one CPU takes them
# all (on this VM every virtio-blk completion lands on CPU 1). The broker is
# pinned there so that it pays for its own disk work: pinned elsewhere, an
# fsyncing broker's completions were handled on the client's core and
# charged to the client (2 µs of kernel time per record for the Java producer).
disk_irq_cpu() {
  mkdir -p "$WORK"
  local name drv cpus
  name="$(basename "$(df --output=source "$WORK" | tail -1)")"
  if [ -e "/sys/class/block/$name/partition" ]; then
    name="$(basename "$(dirname "$(readlink -f "/sys/class/block/$name")")")"
  fi
  drv="$(basename "$(readlink -f "/sys/block/$name/device" 2>/dev/null)")"
  [ -n "$drv" ] || return 0
  cpus="$(awk -v d="$drv" '$NF ~ ("^" d "(-req|q[0-9])") { sub(":", "", $1); print $1 }' /proc/interrupts |
    while read -r irq; do cat "/proc/irq/$irq/effective_affinity_list" 2>/dev/null; done | sort -u)"
  if [[ "$cpus" =~ ^[0-9]+$ ]] && [ "$cpus" -lt "$(nproc)" ]; then echo "$cpus"; fi
}
DISK_IRQ_CPU="$(disk_irq_cpu)"
if [ "$BENCH_PIN" = 1 ]; then
  BROKER_CPU="${BENCH_BROKER_CPU:-$DISK_IRQ_CPU}"
  BROKER_CPU="${BROKER_CPU:-0}"
  if [ "$BROKER_CPU" = 0 ]; then CLIENT_CPU=1; else CLIENT_CPU=0; fi
  BROKER_PIN=(taskset -c "$BROKER_CPU"); CLIENT_PIN=(taskset -c "$CLIENT_CPU")
else
  BROKER_PIN=(); CLIENT_PIN=()
fi
RESULTS="${BENCH_RESULTS:-$BENCH/results}"   # elsewhere: the report goes there too, BENCHMARKS.md is left alone
KAFKA_LIBS="$WORK/kafka-$KAFKA_VERSION/libs"
TOOLS_LIBS="$WORK/kafka-tools-$KAFKA_TOOLS_VERSION/libs"
VENV="$BENCH/.venv"
PY="$VENV/bin/python"
MATPLOTLIB_VERSION=3.10.3
# The same client settings for every broker: the Java producer's defaults
# (idempotent, acks=all, batch.size 16384, linger.ms 5, no compression).
PRODUCER_PROPS=(acks=all)
CLIENT_JVM=(-Xmx512m -XX:+UseG1GC -Djava.awt.headless=true)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------- processes
BROKER_PID=""
PERF_PID=""
cleanup() {
  local rc=$?
  if [ -n "$PERF_PID" ] && kill -0 "$PERF_PID" 2>/dev/null; then kill -INT "$PERF_PID" || true; wait "$PERF_PID" 2>/dev/null || true; fi
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    log "stopping broker pid $BROKER_PID"
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  kill -TERM "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq 1 120); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$BROKER_PID" 2>/dev/null; then log "pid $BROKER_PID ignored SIGTERM for 60 s: SIGKILL"; kill -KILL "$BROKER_PID"; fi
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}

kill9_broker() {
  kill -KILL "$BROKER_PID"
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}

# CPU seconds (user+system) of a PID, from /proc/PID/stat fields 14 and 15.
cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
hwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ---------------------------------------------------------------- setup
setup_python() {
  if [ ! -x "$PY" ] || ! "$PY" -c "import matplotlib" 2>/dev/null; then
    log "creating $VENV with matplotlib==$MATPLOTLIB_VERSION"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "matplotlib==$MATPLOTLIB_VERSION"
  fi
}

maven_fetch() { # dir, then dependency XML
  local dir="$1" deps="$2"
  [ -f "$dir/libs/.complete" ] && return 0
  mkdir -p "$dir"
  cat >"$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.vltava</groupId><artifactId>bench</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>$deps</dependencies>
</project>
POM
  rm -rf "$dir/libs"
  mvn -q -B -f "$dir/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dir/libs" >&2
  touch "$dir/libs/.complete"
}

setup_java() {
  command -v java >/dev/null && command -v mvn >/dev/null || {
    log "installing java and maven from Debian"; apt-get install -y -q default-jdk-headless maven >&2; }
  log "fetching Kafka $KAFKA_VERSION and kafka-tools $KAFKA_TOOLS_VERSION from Maven Central (cached in ~/.m2)"
  maven_fetch "$WORK/kafka-$KAFKA_VERSION" "
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>"
  maven_fetch "$WORK/kafka-tools-$KAFKA_TOOLS_VERSION" "
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_TOOLS_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-nop</artifactId><version>1.7.36</version></dependency>"
}

setup_vltava() {
  [[ "$SYSTEMS" == *vltava* ]] || return 0
  log "building vltava (release)"
  (cd "$ROOT" && cargo build --release -q --bin vltava >&2)
  VLTAVA="${CARGO_TARGET_DIR:-$ROOT/target}/release/vltava"
}

setup_perf() {
  [ "$PROFILE" = 1 ] || return 0
  if ! command -v perf >/dev/null; then
    apt-get install -y -q linux-perf >&2 || { log "no perf: profiling off"; PROFILE=0; return 0; }
  fi
  perf stat -e task-clock true >/dev/null 2>&1 || { log "perf does not work here: profiling off"; PROFILE=0; }
}

# ---------------------------------------------------------------- brokers
BOOT=""
start_kafka() { # data dir (formatted if new)
  local dir="$1" fresh=0
  mkdir -p "$dir/logs"
  if [ ! -f "$dir/server.properties" ]; then
    fresh=1
    local port cport
    port="$(free_port)"; cport="$(free_port)"
    while [ "$cport" = "$port" ]; do cport="$(free_port)"; done
    # Kafka's shipped config/server.properties for one combined KRaft node.
    cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
    cat >"$dir/log4j2.properties" <<L4J
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $dir/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
L4J
    echo "$port" >"$dir/port"
  fi
  # bin/kafka-server-start.sh's defaults: 1 GiB heap, G1 with its pause settings.
  KAFKA_JVM=(-Xmx1G -Xms1G -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties"
    -Dkafka.logs.dir="$dir/logs")
  if [ "$fresh" = 1 ]; then
    local cid
    cid="$(java "${KAFKA_JVM[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>>"$dir/logs/format.err" | tail -1)"
    java "${KAFKA_JVM[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format -t "$cid" \
      -c "$dir/server.properties" >"$dir/logs/format.out" 2>>"$dir/logs/format.err"
  fi
  BOOT="127.0.0.1:$(cat "$dir/port")"
  T0="$(date +%s.%N)"
  "${BROKER_PIN[@]}" java "${KAFKA_JVM[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" \
    >>"$dir/logs/stdout.log" 2>&1 </dev/null &
  BROKER_PID=$!
}

start_vltava() { # data dir, durability
  local dir="$1" dur="$2"
  mkdir -p "$dir"
  [ -f "$dir/port" ] || free_port >"$dir/port"
  BOOT="127.0.0.1:$(cat "$dir/port")"
  T0="$(date +%s.%N)"
  [ -f "$dir/admin-port" ] || free_port >"$dir/admin-port"
  ADMIN="127.0.0.1:$(cat "$dir/admin-port")"
  "${BROKER_PIN[@]}" "$VLTAVA" server --listen "$BOOT" --data-dir "$dir/data" --durability "$dur" \
    --admin-listen "$ADMIN" >>"$dir/stdout.log" 2>>"$dir/stderr.log" </dev/null &
  BROKER_PID=$!
}

start_system() { # system, dir
  case "$1" in
    kafka) start_kafka "$2" ;;
    vltava-fsync) start_vltava "$2" fsync ;;
    vltava-pagecache) start_vltava "$2" page-cache ;;
  esac
}

# Seconds from spawn to the first successful Metadata (with a topic: all its partitions led).
wait_ready() { # [topic partitions]
  local args=(ready "$BOOT" --since "$T0" --timeout 900)
  [ $# -eq 2 ] && args+=(--topic "$1" --partitions "$2")
  "$PY" "$BENCH/kprobe.py" "${args[@]}"
}

# ---------------------------------------------------------------- clients
# Runs a Kafka tool on the client CPU; its CPU seconds are appended to $OUT/client-cpu.
tool() { # name, class, args...
  local name="$1" cls="$2"; shift 2
  /usr/bin/time -f "%U %S %e" -o "$OUT/$name.time" \
    "${CLIENT_PIN[@]}" java "${CLIENT_JVM[@]}" -cp "$TOOLS_LIBS/*" "$cls" "$@" \
    >"$OUT/$name.out" 2>"$OUT/$name.err" || { log "$name failed:"; tail -n 20 "$OUT/$name.err" "$OUT/$name.out" >&2; return 1; }
  awk '{ printf "%.2f", $1 + $2 }' "$OUT/$name.time"
}

create_topic() { # name partitions
  tool "create-$1" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOT" --create \
    --topic "$1" --partitions "$2" --replication-factor 1 >/dev/null
}

perf_produce() { # name topic records rate [warm-up records]
  tool "$1" org.apache.kafka.tools.ProducerPerformance --bootstrap-server "$BOOT" --topic "$2" \
    --num-records "$3" --record-size "$RECORD_SIZE" --throughput "$4" \
    ${5:+--warmup-records "$5"} --command-property "${PRODUCER_PROPS[@]}"
}

# "N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency, p50 ms 50th, p95 ms 95th, p99 ms 99th, p999 ms 99.9th."
parse_produce() { # file prefix [pattern]: the last summary line (or the last matching pattern)
  grep "${3:-records sent}" "$1" | tail -1 | sed -E 's/steady state //; s/[(),]//g' | awk -v p="$2" '{
    printf "%s_msgs=%s\n%s_mb_s=%s\n%s_lat_avg_ms=%s\n%s_lat_max_ms=%s\n%s_lat_p50_ms=%s\n%s_lat_p95_ms=%s\n%s_lat_p99_ms=%s\n%s_lat_p999_ms=%s\n",
      p, $4, p, $6, p, $8, p, $12, p, $16, p, $19, p, $22, p, $25 }'
}

record() { echo "$1=$2" >>"$OUT/results.env"; }

rk_bench() { # name, vltava bench args...: librdkafka through `vltava bench`, JSON out; prints client CPU s
  local name="$1"; shift
  /usr/bin/time -f "%U %S %e" -o "$OUT/$name.time" \
    "${CLIENT_PIN[@]}" "$VLTAVA" bench "$@" -b "$BOOT" --format json \
    >"$OUT/$name.out" 2>"$OUT/$name.err" || { log "$name failed:"; tail -n 20 "$OUT/$name.err" >&2; return 1; }
  awk '{ printf "%.2f", $1 + $2 }' "$OUT/$name.time"
}

# Written data the kernel has not written back yet, MiB.
dirty_mb() { awk '/^Dirty:/ { printf "%d", $2 / 1024 }' /proc/meminfo; }

# Before a fixed-rate run: a page-cache broker leaves gigabytes of the max-rate
# phases unwritten, and the kernel writing them back during the next run
# takes disk and CPU (the client's core too) from it. `sync` writes them first
# so each system's latency is its own at that rate; the dirty MiB found and
# the seconds it took are recorded.
settle_writeback() { # prefix
  record "$1_dirty_mb" "$(dirty_mb)"
  local t0; t0="$(date +%s.%N)"
  sync
  record "$1_sync_s" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
}

# Vltava's /metrics (Prometheus text); nothing for Kafka.
metrics_snapshot() { # file
  if [ -n "${ADMIN:-}" ]; then curl -s "http://$ADMIN/metrics" >"$1" || true; else : >"$1"; fi
}

# p50 and p99 between two /metrics snapshots of one of Vltava's histograms,
# as the upper bound of the bucket that holds each quantile: the broker's own
# Produce handling (read to response ready, in order on its connection) or
# its fsyncs.
metrics_quantiles() { # before after series prefix
  python3 - "$@" <<'PY'
import re, sys
before_path, after_path, series, prefix = sys.argv[1:5]
pat = re.compile(re.escape(series) + r'le="([^"]+)"\} (\d+)')
def buckets(path):
    return {m.group(1): int(m.group(2)) for m in map(pat.match, open(path)) if m}
before, after = buckets(before_path), buckets(after_path)
cum = sorted((float("inf") if le == "+Inf" else float(le), n - before.get(le, 0)) for le, n in after.items())
if cum and cum[-1][1] > 0:
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        le = next(le for le, n in cum if n >= q * cum[-1][1])
        print(f"{prefix}_{name}_ms={le * 1000:g}")
PY
}

rk_parse() { # file prefix: records/s and (produce) ack latency from `vltava bench --format json`
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = sys.argv[2]
print(f"{p}_msgs={d['records_per_sec']:.0f}")
for k in ("p50", "p99", "p99_9"):
    if "latency_ms" in d:
        print(f"{p}_lat_{k.replace('_', '')}_ms={d['latency_ms'][k]}")
PY
}

# ---------------------------------------------------------------- one system
run_system() {
  local sys="$1" dir="$WORK/run-$1"
  OUT="$RESULTS/$sys"
  rm -rf "$dir" "$OUT"; mkdir -p "$dir" "$OUT"
  : >"$OUT/results.env"
  record system "$sys"
  record records "$RECORDS"
  log "== $sys: start (load $(loadavg))"
  record load_start "$(loadavg)"
  start_system "$sys" "$dir"
  local ready; ready="$(wait_ready)"
  record ready_s "$ready"
  record pid "$BROKER_PID"
  sleep 3
  record idle_rss_mb "$(rss_mb "$BROKER_PID")"
  record cpu_start_s "$(cpu_s "$BROKER_PID")"
  log "$sys ready in ${ready}s, idle RSS $(rss_mb "$BROKER_PID") MiB"

  if [ "$ONLY_RECOVERY" != 1 ]; then
  create_topic bench "$PARTITIONS" >/dev/null

  # 1. produce at max rate
  log "1. produce $RECORDS x 1 KiB acks=all at max rate (load $(loadavg))"
  record load_produce "$(loadavg)"
  local c0 c1 ccpu
  c0="$(cpu_s "$BROKER_PID")"
  ccpu="$(perf_produce produce bench "$RECORDS" -1)"
  c1="$(cpu_s "$BROKER_PID")"
  parse_produce "$OUT/produce.out" produce >>"$OUT/results.env"
  record produce_broker_cpu_s "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')"
  record produce_client_cpu_s "$ccpu"
  record peak_rss_mb "$(hwm_mb "$BROKER_PID")"
  grep 'records sent' "$OUT/produce.out" | tail -1 >&2

  # 2. consume from the beginning
  log "2. consume $RECORDS from the beginning (load $(loadavg))"
  record load_consume "$(loadavg)"
  c0="$(cpu_s "$BROKER_PID")"
  ccpu="$(tool consume org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$BOOT" \
    --topic bench --num-records "$RECORDS" --group "bench-$sys-$$" --timeout 120000)"
  c1="$(cpu_s "$BROKER_PID")"
  # start.time, end.time, MB, MB.sec, nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  tail -1 "$OUT/consume.out" | awk -F', *' '{ printf "consume_msgs=%s\nconsume_mb_s=%s\nconsume_rebalance_ms=%s\nconsume_fetch_msgs=%s\nconsume_fetch_mb_s=%s\nconsume_count=%s\n", $6, $4, $7, $10, $9, $5 }' >>"$OUT/results.env"
  record consume_broker_cpu_s "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')"
  record consume_client_cpu_s "$ccpu"
  tail -1 "$OUT/consume.out" >&2

  # 1-2 again with librdkafka (`vltava bench`, the same C client and settings
  # for every broker: acks=all, librdkafka's defaults otherwise), on its own topic.
  log "1-2. librdkafka: vltava bench produce/consume $RECORDS x 1 KiB (load $(loadavg))"
  create_topic rk "$PARTITIONS" >/dev/null
  c0="$(cpu_s "$BROKER_PID")"
  ccpu="$(rk_bench rk-produce produce --topic rk --records "$RECORDS" --record-size "$RECORD_SIZE" --acks all)"
  c1="$(cpu_s "$BROKER_PID")"
  rk_parse "$OUT/rk-produce.out" rk_produce >>"$OUT/results.env"
  record rk_produce_broker_cpu_s "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')"
  record rk_produce_client_cpu_s "$ccpu"
  c0="$(cpu_s "$BROKER_PID")"
  ccpu="$(rk_bench rk-consume consume --topic rk --records "$RECORDS")"
  c1="$(cpu_s "$BROKER_PID")"
  rk_parse "$OUT/rk-consume.out" rk_consume >>"$OUT/results.env"
  record rk_consume_broker_cpu_s "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')"
  record rk_consume_client_cpu_s "$ccpu"
  cat "$OUT/rk-produce.out" "$OUT/rk-consume.out" >&2

  # 3. latency at a fixed rate: produce-ack, then produce-to-consume. Kafka runs
  # first, and half of its peak from phase 1 is the rate for every system.
  if [ -z "$LAT_RATE" ]; then
    if [ "$sys" = kafka ]; then
      LAT_RATE="$(awk -F= '$1 == "produce_msgs" { printf "%d", $2 / 2 }' "$OUT/results.env")"
    else
      LAT_RATE=20000
    fi
  fi
  # The first 5 s (the client JVM's warm-up) are reported apart: `lat_*` is the
  # steady state after them, `lat_all_*` the whole run.
  local warm=$((LAT_RATE * 5))
  local n=$((LAT_RATE * LAT_SECONDS + warm))
  log "3. produce $n at $LAT_RATE msgs/s; EndToEndLatency x $E2E_RECORDS (load $(loadavg))"
  record load_latency "$(loadavg)"
  record lat_rate "$LAT_RATE"
  settle_writeback lat
  create_topic lat "$PARTITIONS" >/dev/null
  metrics_snapshot "$OUT/metrics-before-latency.txt"
  perf_produce latency lat "$n" "$LAT_RATE" "$warm" >/dev/null
  metrics_snapshot "$OUT/metrics-after-latency.txt"
  for m in 'vltava_request_duration_seconds_bucket{api="Produce",:lat_broker' 'vltava_fsync_duration_seconds_bucket{:lat_fsync'; do
    metrics_quantiles "$OUT/metrics-before-latency.txt" "$OUT/metrics-after-latency.txt" "${m%:*}" "${m##*:}" \
      >>"$OUT/results.env"
  done
  parse_produce "$OUT/latency.out" lat 'steady state records sent' >>"$OUT/results.env"
  parse_produce "$OUT/latency.out" lat_all '^[0-9][0-9]* records sent.*50th' >>"$OUT/results.env"
  create_topic e2e 1 >/dev/null
  printf '%s\n' "${PRODUCER_PROPS[@]}" | { grep -v '^acks=' || true; } >"$OUT/e2e.properties"
  tool e2e org.apache.kafka.tools.EndToEndLatency --bootstrap-server "$BOOT" --topic e2e \
    --command-config "$OUT/e2e.properties" --num-records "$E2E_RECORDS" --producer-acks all --record-size "$RECORD_SIZE" >/dev/null
  # "Avg latency: 1.2345 ms" and "Percentiles: 50th = 1, 99th = 2, 99.9th = 3"
  awk '/Avg latency/ { printf "e2e_avg_ms=%s\n", $3 }
       /Percentiles/ { gsub(/,/, ""); printf "e2e_p50_ms=%s\ne2e_p99_ms=%s\ne2e_p999_ms=%s\n", $4, $7, $10 }' \
    "$OUT/e2e.out" >>"$OUT/results.env"
  grep 'records sent' "$OUT/latency.out" | tail -1 >&2; grep -E 'Avg|Percentiles' "$OUT/e2e.out" >&2 || true

  # 3 again with librdkafka, at half of Kafka's librdkafka peak: produce-ack
  # latency, then produce-to-consume (`vltava bench e2e`: a consumer in the
  # same process stamps each record's arrival) at the same rate.
  if [ -z "$RK_LAT_RATE" ]; then
    if [ "$sys" = kafka ]; then
      RK_LAT_RATE="$(awk -F= '$1 == "rk_produce_msgs" { printf "%d", $2 / 2 }' "$OUT/results.env")"
    else
      RK_LAT_RATE=100000
    fi
  fi
  n=$((RK_LAT_RATE * LAT_SECONDS))
  log "3. librdkafka: produce $n at $RK_LAT_RATE msgs/s, then e2e at the same rate (load $(loadavg))"
  record rk_lat_rate "$RK_LAT_RATE"
  settle_writeback rk_lat
  create_topic rklat "$PARTITIONS" >/dev/null
  rk_bench rk-latency produce --topic rklat --records "$n" --record-size "$RECORD_SIZE" --acks all \
    --throughput "$RK_LAT_RATE" >/dev/null
  rk_parse "$OUT/rk-latency.out" rk_lat >>"$OUT/results.env"
  create_topic rke2e "$PARTITIONS" >/dev/null
  rk_bench rk-e2e e2e --topic rke2e --records "$n" --record-size "$RECORD_SIZE" --acks all \
    --throughput "$RK_LAT_RATE" >/dev/null
  rk_parse "$OUT/rk-e2e.out" rk_e2e >>"$OUT/results.env"
  cat "$OUT/rk-latency.out" "$OUT/rk-e2e.out" >&2

  # 4. many partitions
  log "4. 1 topic x $MANY_PARTITIONS partitions at $MANY_RATE msgs/s; Metadata latency (load $(loadavg))"
  record load_many "$(loadavg)"
  local t0 t1
  t0="$(date +%s.%N)"
  create_topic many "$MANY_PARTITIONS" >/dev/null
  "$PY" "$BENCH/kprobe.py" ready "$BOOT" --since "$t0" --topic many --partitions "$MANY_PARTITIONS" --timeout 600 >"$OUT/many-create.out"
  record many_create_s "$(cat "$OUT/many-create.out")"
  perf_produce many many "$((MANY_RATE * MANY_SECONDS))" "$MANY_RATE" >/dev/null
  parse_produce "$OUT/many.out" many >>"$OUT/results.env"
  read -r mp50 mp99 mmax < <("$PY" "$BENCH/kprobe.py" metadata "$BOOT" --topic many --n 200)
  record metadata_p50_ms "$mp50"; record metadata_p99_ms "$mp99"; record metadata_max_ms "$mmax"
  grep 'records sent' "$OUT/many.out" | tail -1 >&2
  log "Metadata (1,000 partitions): p50 $mp50 ms, p99 $mp99 ms"

  record cpu_total_s "$(cpu_s "$BROKER_PID")"

  # profile: an extra produce run under perf record -g (not part of the figures above)
  if [ "$PROFILE" = 1 ] && [ "$sys" != kafka ]; then
    log "profile: perf record -g -p $BROKER_PID during a produce run"
    create_topic prof "$PARTITIONS" >/dev/null
    perf record -g -F 999 -p "$BROKER_PID" -o "$dir/perf.data" >"$OUT/perf-record.log" 2>&1 &
    PERF_PID=$!
    sleep 1
    local w0 w1
    c0="$(cpu_s "$BROKER_PID")"; w0="$(date +%s.%N)"
    perf_produce profile prof "$((RECORDS / 2))" -1 >/dev/null
    c1="$(cpu_s "$BROKER_PID")"; w1="$(date +%s.%N)"
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""
    parse_produce "$OUT/profile.out" profile >>"$OUT/results.env"
    record profile_broker_busy_pct "$(awk -v a="$c0" -v b="$c1" -v s="$w0" -v e="$w1" 'BEGIN{printf "%.0f", 100*(b-a)/(e-s)}')"
    grep 'records sent' "$OUT/profile.out" | tail -1 >&2
    perf report -i "$dir/perf.data" --no-children --stdio --sort dso,symbol --percent-limit 1 -g none \
      2>/dev/null | grep -v '^#' | grep -v '^$' | sed -E 's/ +- +- *$//' | head -40 >"$OUT/perf-self.txt" || true
    perf report -i "$dir/perf.data" --children --stdio --sort symbol --percent-limit 5 -g none \
      2>/dev/null | grep -v '^#' | grep -v '^$' | sed -E 's/ +- +- *$//' | cut -c1-140 | head -45 >"$OUT/perf-children.txt" || true
    # where the wall time goes: system calls per thread (a separate run, perf trace slows it down)
    log "profile: perf trace -s -p $BROKER_PID during a produce run"
    perf trace -s -p "$BROKER_PID" -e fdatasync,fsync,pwrite64,pread64,recvfrom,sendmsg,writev,sendto \
      -o "$OUT/perf-trace.txt" >/dev/null 2>&1 &
    PERF_PID=$!
    sleep 1
    perf_produce trace prof "$((RECORDS / 4))" -1 >/dev/null
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""
    parse_produce "$OUT/trace.out" trace >>"$OUT/results.env"
    rm -f "$dir/perf.data"
  fi

  fi # ONLY_RECOVERY

  # 6. recovery after kill -9
  if [[ " $RECOVERY_SYSTEMS " == *" $sys "* ]]; then
    local rec_n=$((RECOVERY_MB * 1024))
    log "6. fill $RECOVERY_MB MiB ($rec_n records, acks=all), kill -9, restart (load $(loadavg))"
    record load_recovery "$(loadavg)"
    record recovery_mb "$RECOVERY_MB"
    create_topic rec "$PARTITIONS" >/dev/null
    perf_produce fill rec "$rec_n" -1 >/dev/null
    grep 'records sent' "$OUT/fill.out" | tail -1 >&2
    record recovery_disk_mb "$(du -sm "$dir" | cut -f1)"
    kill9_broker
    start_system "$sys" "$dir"
    local rready; rready="$(wait_ready rec "$PARTITIONS")"
    record recovery_ready_s "$rready"
    record recovery_rss_mb "$(rss_mb "$BROKER_PID")"
    log "$sys restarted after kill -9 with all partitions led in ${rready}s"
  fi

  stop_broker
  record load_end "$(loadavg)"
  [ "$sys" = kafka ] && cp "$dir/logs/server.log" "$OUT/server.log" 2>/dev/null || true
  rm -rf "$dir"
}

# ---------------------------------------------------------------- main
mkdir -p "$WORK" "$RESULTS"
setup_python
setup_java
setup_vltava
setup_perf
rm -rf "$RESULTS"/*
{
  echo "scale=$SCALE"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cores=$(nproc)"
  echo "cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "kernel=$(uname -sr)"
  echo "mem_gib=$(free -g | awk '/^Mem:/ {print $2}')"
  echo "disk=$(df -h "$WORK" | awk 'NR==2 {print $1 " " $2}')"
  echo "java=$(java -version 2>&1 | head -1)"
  echo "vltava_commit=$(git -C "$ROOT" rev-parse --short HEAD)"
  echo "kafka_version=$KAFKA_VERSION"
  echo "tools_version=$KAFKA_TOOLS_VERSION"
  echo "pinned=$BENCH_PIN"
  echo "broker_cpu=${BROKER_CPU:-}"
  echo "client_cpu=${CLIENT_CPU:-}"
  echo "disk_irq_cpu=$DISK_IRQ_CPU"
  echo "load_begin=$(loadavg)"
  # 16 KiB write + fdatasync, 200 times, on the disk under $WORK: what one group commit costs here.
  echo "fsync_16k_ms=$("$PY" -c '
import os, sys, time
p = sys.argv[1] + "/fsync-probe"; fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC); b = b"x" * 16384; l = []
for _ in range(200):
    t = time.perf_counter(); os.write(fd, b); os.fdatasync(fd); l.append((time.perf_counter() - t) * 1000)
os.close(fd); os.unlink(p); l.sort(); print(f"p50 {l[100]:.2f} p99 {l[198]:.2f} max {l[-1]:.2f}")' "$WORK")"
  # 1 GiB in 1 MiB writes and one fdatasync: the most a broker that fsyncs can store per second here.
  echo "disk_write_mb_s=$("$PY" -c '
import os, sys, time
p = sys.argv[1] + "/write-probe"; fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC); b = b"x" * (1 << 20)
t = time.perf_counter()
for _ in range(1024): os.write(fd, b)
os.fdatasync(fd); s = time.perf_counter() - t; os.close(fd); os.unlink(p); print(f"{1024 * 1.048576 / s:.0f}")' "$WORK")"
} >"$RESULTS/machine.env"

LAT_RATE="${BENCH_LAT_RATE:-}"
RK_LAT_RATE="${BENCH_RK_LAT_RATE:-}"
for sys in $SYSTEMS; do run_system "$sys"; done
echo "load_end=$(loadavg)" >>"$RESULTS/machine.env"

if [ -n "${BENCH_RESULTS:-}" ]; then
  "$PY" "$BENCH/report.py" "$RESULTS" "$RESULTS/BENCHMARKS.md" "$RESULTS/chart.png"
  log "wrote $RESULTS/BENCHMARKS.md and chart.png"
else
  "$PY" "$BENCH/report.py" "$RESULTS" "$ROOT/BENCHMARKS.md" "$BENCH/chart.png"
  log "wrote BENCHMARKS.md and bench/chart.png"
fi
