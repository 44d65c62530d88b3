#!/usr/bin/env bash
# Runs every Vltava test: formatting, lints, unit, integration, crash and
# client-compatibility tests. Installs what it needs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# kcat (librdkafka's CLI) is driven by tests/kcat.rs.
if ! command -v kcat >/dev/null 2>&1; then
  echo "installing kcat (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kcat
fi

# The fault-injection tests (tests/faults.rs) cut links between network
# namespaces with nftables.
if ! command -v nft >/dev/null 2>&1; then
  echo "installing nftables (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nftables
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "Node.js 20 and npm are needed for tests/compat (kafkajs)" >&2
  exit 1
fi
if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  echo "Java 17 and Maven are needed for tests/failover_clients.rs and tests/compat/java" >&2
  exit 1
fi
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "Python 3 with venv and ensurepip is needed for tests/compat/python" >&2
  exit 1
fi

cargo fmt --all -- --check
# The fuzz crate is its own workspace, so the line above does not reach it.
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check
cargo clippy --release --all-targets -- -D warnings
# tests/failover_clients.rs runs real client programs that cargo does not
# build: the pinned kafkajs (npm ci) and the Java EOS loop (mvn
# test-compile, which also writes its classpath file).
tests/compat/failover/prepare.sh
cargo test --release -- --test-threads=2
# Real client programs (kafkajs, the seeds') against the release binary
# that cargo test just built.
tests/compat/run.sh
# The same scenarios against a cluster of three nodes started from Kafka
# KRaft server.properties files (clients bootstrap from one node).
tests/compat/cluster.sh
# Python clients (confluent-kafka, kafka-python, aiokafka) against the same
# binary; installs its pinned clients into tests/compat/python/.venv.
tests/compat/python/run.sh
# Go (franz-go, sarama, kafka-go) and Java (kafka-clients, kafka-streams)
# clients against the same binary; downloads the pinned modules / jars (Go
# module proxy, Maven Central) on first use. Needs go and java 17 + mvn.
tests/compat/go-java.sh
# Each cargo-fuzz target for 60 s from the committed seeds (needs nightly;
# installs cargo-fuzz if missing); fails on any crash. See fuzz/README.md.
scripts/fuzz.sh 60
