#!/usr/bin/env bash
# Runs every client suite against Apache Kafka (the reference, from Maven
# Central) and then against Vltava, and rewrites the client x scenario table
# in docs/COMPATIBILITY.md from their JUnit results. Not run by CI (it needs
# the reference broker); CI runs the same suites against Vltava only.
#
#   cargo build --release && tests/compat/matrix.sh
#
# Environment: VLTAVA_BIN (default target/release/vltava), COMPAT_RESULTS
# (default /tmp/vltava-compat-matrix: the JUnit XML files, one directory per
# broker), KAFKA_VERSION / KAFKA_REF_DIR as for kafka-reference.sh.
set -uo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
export VLTAVA_BIN="${VLTAVA_BIN:-$here/../../target/release/vltava}"
out="${COMPAT_RESULTS:-/tmp/vltava-compat-matrix}"
rm -rf "$out"
mkdir -p "$out/kafka" "$out/vltava"

# Every suite, writing JUnit XML named after its client into $1. A failing
# suite does not stop the others: the table shows what failed.
run_suites() {
  local dir="$1"
  COMPAT_JUNIT="$dir/kafkajs.xml" ./run.sh || true
  COMPAT_JUNIT="$dir/python.xml" python/run.sh || true
  # go.xml and java-<Class>.xml
  COMPAT_JUNIT_DIR="$dir" ./go-java.sh || true
}

stop_reference() { ./kafka-reference.sh stop >/dev/null 2>&1 || true; }
trap stop_reference EXIT

echo "matrix: Apache Kafka (reference)" >&2
eval "$(./kafka-reference.sh start)"
run_suites "$out/kafka"
stop_reference
unset KAFKA_BOOTSTRAP

echo "matrix: Vltava ($VLTAVA_BIN)" >&2
run_suites "$out/vltava"

export MATRIX_NOTE="Run by \`tests/compat/matrix.sh\` on $(date -u +%Y-%m-%d): Apache Kafka ${KAFKA_VERSION:-4.4.0} (kafka-reference.sh), Vltava \`$("$VLTAVA_BIN" --version 2>/dev/null || echo vltava)\` built at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
python3 matrix.py "$out" ../../docs/COMPATIBILITY.md
