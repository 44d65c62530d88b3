#!/usr/bin/env bash
# Long fault-injection runs (docs/FAULTS.md): each nemesis on a fresh
# three-node cluster for MINUTES minutes of fault/heal cycles, against
# Vltava or (--kafka) Apache Kafka 4.4.0 from the same server.properties.
# One line per nemesis is appended to target/faults/results.tsv:
# flavor, nemesis, seed, minutes, faults, what was acknowledged and read,
# the anomaly classes found, the run's directory.
#
#   scripts/faults.sh [--kafka] [--minutes M] [--seed S] [NEMESIS...]
#
# Needs root, nft (Debian's nftables) and, with --kafka, java 17.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=20
seed=1
nemeses=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kafka)
      tests/compat/kafka-reference.sh fetch >/dev/null
      export VLTAVA_CLUSTER_KAFKA_LIBS=/tmp/vltava-kafka-ref-4.4.0/libs
      ;;
    --minutes) minutes="$2"; shift ;;
    --seed) seed="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) nemeses+=("$1") ;;
  esac
  shift
done
if [ ${#nemeses[@]} -eq 0 ]; then list=all; else list=$(IFS=,; echo "${nemeses[*]}"); fi

if ! command -v nft >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables
fi
mkdir -p target/faults
VLTAVA_FAULTS_NEMESES="$list" VLTAVA_FAULTS_MINUTES="$minutes" VLTAVA_FAULTS_SEED="$seed" \
  cargo test --release --test faults -- --ignored long_run --nocapture
echo "results: target/faults/results.tsv"
