#!/usr/bin/env bash
# Prepares the client programs tests/failover_clients.rs runs (cargo builds
# none of them): the pinned kafkajs for group.mjs (npm ci, as run.sh does),
# and the Java EOS loop compiled into java/target/test-classes with its
# classpath in java/target/classpath.txt (mvn test-compile; needs java 17 +
# mvn, downloads the pinned jars from Maven Central on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
./npm-ci.sh
command -v mvn >/dev/null && command -v java >/dev/null \
  || { echo "failover: java (17+) and mvn are needed for tests/compat/java" >&2; exit 2; }
(cd java && mvn -q -B test-compile)
