#!/usr/bin/env bash
# Runs the client-compatibility suite (kafkajs) with Node's test runner.
#
#   tests/compat/run.sh                        # test/*.test.mjs against a fresh Vltava per file
#   tests/compat/run.sh FILE...                # only these test files
#   KAFKA_BOOTSTRAP=127.0.0.1:9092 tests/compat/run.sh   # any running broker instead
#   COMPAT_JUNIT=/tmp/kafkajs.xml tests/compat/run.sh    # also write JUnit XML
#
# Builds nothing: the broker is $VLTAVA_BIN, default target/release/vltava of
# this repository. Installs the pinned clients with `npm ci` when node_modules
# is missing or older than package-lock.json.
set -euo pipefail
cd "$(dirname "$0")"

export VLTAVA_BIN="${VLTAVA_BIN:-../../target/release/vltava}"
export KAFKAJS_NO_PARTITIONER_WARNING=1
if [ -z "${KAFKA_BOOTSTRAP:-}" ] && [ ! -x "$VLTAVA_BIN" ]; then
  echo "compat: no broker binary at $VLTAVA_BIN (cargo build --release, or set VLTAVA_BIN / KAFKA_BOOTSTRAP)" >&2
  exit 2
fi

./npm-ci.sh

files=()
if [ $# -eq 0 ]; then
  files=(test/*.test.mjs)
else
  files=("$@")
fi

echo "compat: broker ${KAFKA_BOOTSTRAP:-vltava ($VLTAVA_BIN)}; files: ${files[*]}" >&2
# One file at a time (2-core machines); each scenario has its own hard
# timeout, and the whole run is bounded too.
reporters=(--test-reporter=spec --test-reporter-destination=stdout)
if [ -n "${COMPAT_JUNIT:-}" ]; then
  # JUnit XML as well, for tests/compat/matrix.sh.
  reporters+=(--test-reporter=junit "--test-reporter-destination=$COMPAT_JUNIT")
fi
exec timeout --signal=TERM --kill-after=30 "${COMPAT_TIMEOUT:-900}" \
  node --test --test-concurrency=1 "${reporters[@]}" "${files[@]}"
