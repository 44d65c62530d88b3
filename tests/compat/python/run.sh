#!/usr/bin/env bash
# Runs the Python client-compatibility suite (confluent-kafka, kafka-python,
# aiokafka) with pytest.
#
#   tests/compat/python/run.sh                      # test_*.py, a fresh Vltava per file
#   tests/compat/python/run.sh test_aiokafka.py     # chosen files (any pytest arguments)
#   KAFKA_BOOTSTRAP=127.0.0.1:9092 tests/compat/python/run.sh   # any running broker instead
#   COMPAT_JUNIT=/tmp/python.xml tests/compat/python/run.sh     # also JUnit XML results
#
# Builds nothing: the broker is $VLTAVA_BIN, default target/release/vltava of
# this repository. Installs the pinned clients (requirements.txt) into .venv
# when it is missing or older than requirements.txt.
set -euo pipefail
cd "$(dirname "$0")"

export VLTAVA_BIN="${VLTAVA_BIN:-../../../target/release/vltava}"
if [ -z "${KAFKA_BOOTSTRAP:-}" ] && [ ! -x "$VLTAVA_BIN" ]; then
  echo "compat-python: no broker binary at $VLTAVA_BIN (cargo build --release, or set VLTAVA_BIN / KAFKA_BOOTSTRAP)" >&2
  exit 2
fi
if [ -x "$VLTAVA_BIN" ]; then  # absolute, as conftest.py resolves it from its own directory anyway
  VLTAVA_BIN="$(cd "$(dirname "$VLTAVA_BIN")" && pwd)/$(basename "$VLTAVA_BIN")"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.installed ] || [ requirements.txt -nt .venv/.installed ]; then
  echo "compat-python: installing requirements.txt into .venv" >&2
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r requirements.txt >&2
  touch .venv/.installed
fi

args=()
if [ -n "${COMPAT_JUNIT:-}" ]; then
  args+=("--junitxml=$COMPAT_JUNIT")
fi
if [ $# -eq 0 ]; then
  set -- test_*.py
fi

echo "compat-python: broker ${KAFKA_BOOTSTRAP:-vltava ($VLTAVA_BIN)}; $*" >&2
# Every test has its own hard timeout (pytest.ini, pytest-timeout); the whole
# run is bounded too.
exec timeout --signal=TERM --kill-after=30 "${COMPAT_TIMEOUT:-600}" \
  .venv/bin/python -m pytest "${args[@]}" "$@"
