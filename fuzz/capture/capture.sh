#!/usr/bin/env bash
# Recaptures the fuzz seeds (fuzz/seeds/*) from real clients: a release
# vltava broker behind proxy.py, driven by librdkafka (the vltava CLI),
# kafkajs (tests/compat's node_modules: run `npm ci` there first) and the
# Java client (kafka-clients and its codecs from ~/.m2: `mvn
# dependency:get -Dartifact=org.apache.kafka:kafka-clients:4.4.0` fetches
# them). Writes to OUT_DIR (default /tmp/vltava-seeds), then copy what you
# want into fuzz/seeds/. Not run by CI.
set -euo pipefail
cd "$(dirname "$0")"
here="$PWD"
root="$(cd ../.. && pwd)"
out="${1:-/tmp/vltava-seeds}"
vltava="${VLTAVA:-$root/target/release/vltava}"
data="$(mktemp -d)"
rm -rf "$out" && mkdir -p "$out"
"$vltava" server --listen 127.0.0.1:19300 --advertised-listener 127.0.0.1:19301 \
  --data-dir "$data" --admin-listen 127.0.0.1:19399 >"$out/broker.log" 2>&1 &
broker=$!
proxy=""
stop_proxy() { if [ -n "$proxy" ]; then kill "$proxy"; wait "$proxy" 2>/dev/null || true; proxy=""; fi; }
trap 'stop_proxy; kill $broker; rm -rf "$data"' EXIT
start_proxy() { python3 "$here/proxy.py" 19301 19300 "$out/$1" "$1" & proxy=$!; sleep 1; }

export VLTAVA_BROKERS=127.0.0.1:19301
start_proxy librdkafka
"$vltava" topic create fz -p 2 -c cleanup.policy=delete
"$vltava" topic create fzc -p 1 -c cleanup.policy=compact
"$vltava" topic list
"$vltava" topic describe fz
"$vltava" topic alter-config fz --set retention.ms=100000
"$vltava" topic add-partitions fz 3
printf 'k1:hello\nk2:world\n' | "$vltava" produce fz -K :
for z in gzip snappy lz4 zstd; do printf 'a:1\nb:2\nc:3\n' | "$vltava" produce fz -K : -z "$z"; done
printf 'k:v\n' | "$vltava" produce fzc -K : -H h=1 --acks 1 -X enable.idempotence=false
printf 'x:1\n' | "$vltava" produce fz -K : -X enable.idempotence=true
printf 'k:v\n' | "$vltava" produce fz -K : -X transactional.id=tx-fz || true
"$vltava" consume fz -o beginning -e
"$vltava" consume fz -g gfz -e
"$vltava" consume fz -g gfz2 -e -X group.protocol=consumer
"$vltava" group list
"$vltava" group describe gfz
"$vltava" cluster info
"$vltava" group reset-offsets gfz --topic fz --to-earliest --execute
"$vltava" group delete gfz2
"$vltava" topic alter-config fz --delete retention.ms
"$vltava" topic delete fzc
stop_proxy

start_proxy kafkajs
(cd "$root/tests/compat" && cp "$here/kafkajs.mjs" .seed-kafkajs.mjs &&
  node .seed-kafkajs.mjs 127.0.0.1:19301; rm -f .seed-kafkajs.mjs)
stop_proxy

start_proxy java
m2="$HOME/.m2/repository"
cp="$m2/org/apache/kafka/kafka-clients/4.4.0/kafka-clients-4.4.0.jar"
for jar in org/slf4j/slf4j-api/2.0.17/slf4j-api-2.0.17.jar \
  org/xerial/snappy/snappy-java/1.1.10.7/snappy-java-1.1.10.7.jar \
  at/yawk/lz4/lz4-java/1.11.2/lz4-java-1.11.2.jar \
  com/github/luben/zstd-jni/1.5.7-17/zstd-jni-1.5.7-17.jar; do cp="$cp:$m2/$jar"; done
java -cp "$cp" "$here/JavaSeed.java" 127.0.0.1:19301
stop_proxy

python3 "$here/log_seeds.py" "$data" "$out/seeds"
echo "captured into $out"
