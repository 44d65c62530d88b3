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

cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release -- --test-threads=2
