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

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "Node.js 20 and npm are needed for tests/compat (kafkajs)" >&2
  exit 1
fi

cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release -- --test-threads=2
# Real client programs (kafkajs, the seeds') against the release binary
# that cargo test just built.
tests/compat/run.sh
