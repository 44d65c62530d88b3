#!/usr/bin/env bash
# Installs the pinned Node clients (kafkajs, NestJS; package-lock.json) with
# `npm ci` when node_modules is missing or older than the lockfile. Used by
# run.sh and failover/prepare.sh.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "compat: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
