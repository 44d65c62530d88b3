#!/usr/bin/env bash
# Runs the Go (franz-go, sarama, kafka-go) and Java (kafka-clients,
# kafka-streams) client-compatibility suites.
#
#   tests/compat/go-java.sh                 # both, each against its own fresh Vltava
#   tests/compat/go-java.sh go              # only Go (tests/compat/go, `go test`)
#   tests/compat/go-java.sh java            # only Java (tests/compat/java, `mvn test`)
#   KAFKA_BOOTSTRAP=127.0.0.1:9092 tests/compat/go-java.sh   # any running broker instead
#
# Same contract as run.sh: builds no broker; VLTAVA_BIN (default
# target/release/vltava of this repository), KAFKA_BOOTSTRAP (use that
# broker), COMPAT_TIMEOUT (whole run, default 900 s). Also:
#   COMPAT_JUNIT_DIR=/path   JUnit XML to /path/go.xml (go test -json, converted by
#                            go/cmd/go2junit) and /path/java-<Class>.xml (surefire's),
#                            the names matrix.py reads as clients "go" and "java"
# Downloads the pinned clients on first use (Go module proxy, Maven Central).
set -euo pipefail
cd "$(dirname "$0")"
COMPAT_DIR="$PWD"

VLTAVA_BIN="${VLTAVA_BIN:-../../target/release/vltava}"
case "$VLTAVA_BIN" in /*) ;; *) VLTAVA_BIN="$COMPAT_DIR/$VLTAVA_BIN" ;; esac
export VLTAVA_BIN
if [ -z "${KAFKA_BOOTSTRAP:-}" ] && [ ! -x "$VLTAVA_BIN" ]; then
  echo "compat: no broker binary at $VLTAVA_BIN (cargo build --release, or set VLTAVA_BIN / KAFKA_BOOTSTRAP)" >&2
  exit 2
fi
junit="${COMPAT_JUNIT_DIR:-}"
if [ -n "$junit" ]; then
  mkdir -p "$junit"
  junit="$(cd "$junit" && pwd)"
fi

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(go java)
budget="${COMPAT_TIMEOUT:-900}"
deadline=$((SECONDS + budget))
remaining() { local r=$((deadline - SECONDS)); [ $r -gt 0 ] && echo $r || echo 1; }

echo "compat: broker ${KAFKA_BOOTSTRAP:-vltava ($VLTAVA_BIN)}; suites: ${suites[*]}" >&2

run_go() {
  command -v go >/dev/null || { echo "compat: go is needed for tests/compat/go" >&2; return 2; }
  cd "$COMPAT_DIR/go"
  local args=(test -count=1 -timeout 600s ./...)
  echo "compat: go ${args[*]}" >&2
  if [ -n "$junit" ]; then
    go build -o "$junit/.go2junit" ./cmd/go2junit
    local rc=0
    timeout --signal=TERM --kill-after=30 "$(remaining)" go "${args[@]}" -json \
      | "$junit/.go2junit" -o "$junit/go.xml" || rc=$?
    rm -f "$junit/.go2junit"
    # pipefail: a failing `go test` fails the pipeline
    return $rc
  fi
  timeout --signal=TERM --kill-after=30 "$(remaining)" go "${args[@]}" -v
}

run_java() {
  command -v mvn >/dev/null && command -v java >/dev/null \
    || { echo "compat: java (17+) and mvn are needed for tests/compat/java" >&2; return 2; }
  cd "$COMPAT_DIR/java"
  local args=(-q -B test)
  echo "compat: mvn ${args[*]}" >&2
  local rc=0
  rm -rf target/surefire-reports
  timeout --signal=TERM --kill-after=30 "$(remaining)" mvn "${args[@]}" || rc=$?
  if [ -n "$junit" ]; then
    local f
    for f in target/surefire-reports/TEST-*.xml; do
      [ -e "$f" ] || continue
      f="${f##*/TEST-}"
      cp "target/surefire-reports/TEST-$f" "$junit/java-${f#vltava.compat.}"
    done
  fi
  return $rc
}

status=0
for s in "${suites[@]}"; do
  start=$SECONDS
  case "$s" in
    go) (run_go) || { status=1; echo "compat: go suite FAILED" >&2; } ;;
    java) (run_java) || { status=1; echo "compat: java suite FAILED" >&2; } ;;
    *) echo "usage: $0 [go] [java]" >&2; exit 2 ;;
  esac
  echo "compat: $s suite took $((SECONDS - start)) s" >&2
done
exit $status
