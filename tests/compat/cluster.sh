#!/usr/bin/env bash
# Runs client scenarios (kafkajs, the seeds', NestJS) against a cluster of
# three Vltava nodes, each started from its own Kafka KRaft
# server.properties (combined roles, controller.quorum.voters), on loopback,
# with every partition replicated three times (topics the scenarios create
# without a replication factor, and the internal topics) and
# min.insync.replicas=2, as a production cluster would run:
#
#   tests/compat/cluster.sh                 # every scenario file (test/*.test.mjs)
#   tests/compat/cluster.sh FILE...         # these files (paths under tests/compat)
#
# Builds nothing: the nodes run $VLTAVA_BIN (default target/release/vltava).
# The nodes are stopped by PID (SIGTERM, a controlled shutdown) on exit.
set -euo pipefail
cd "$(dirname "$0")"

VLTAVA_BIN="$(realpath "${VLTAVA_BIN:-../../target/release/vltava}")"
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(test/*.test.mjs)
fi

dir="$(mktemp -d /tmp/vltava-cluster-XXXXXX)"
pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap stop EXIT

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

ports=()
while [ ${#ports[@]} -lt 6 ]; do
  p="$(free_port)"
  case " ${ports[*]} " in *" $p "*) ;; *) ports+=("$p") ;; esac
done
voters="1@127.0.0.1:${ports[1]},2@127.0.0.1:${ports[3]},3@127.0.0.1:${ports[5]}"
# Clients bootstrap from one node, as the seeds do, and find the rest.
bootstrap="127.0.0.1:${ports[0]}"

for id in 1 2 3; do
  kafka="${ports[$(( (id - 1) * 2 ))]}" controller="${ports[$(( (id - 1) * 2 + 1 ))]}"
  cat >"$dir/server-$id.properties" <<PROPS
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$kafka,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data-$id
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
PROPS
  "$VLTAVA_BIN" server --admin-listen off --config "$dir/server-$id.properties" \
    >"$dir/stdout-$id.log" 2>"$dir/stderr-$id.log" &
  pids+=($!)
done
for id in 1 2 3; do
  deadline=$((SECONDS + 60))
  until grep -q "^vltava listening on" "$dir/stdout-$id.log" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "${pids[$((id - 1))]}" 2>/dev/null; then
      echo "cluster: node $id did not start:" >&2; tail -30 "$dir/stderr-$id.log" >&2; exit 1
    fi
    sleep 0.1
  done
done
echo "cluster: three nodes, bootstrap $bootstrap" >&2
KAFKA_BOOTSTRAP="$bootstrap" KAFKA_REPLICATION_FACTOR=3 KAFKA_MIN_INSYNC_REPLICAS=2 \
  ./run.sh "${files[@]}"
