#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), one
# after another, starting from the committed seeds (fuzz/seeds/TARGET). Fails
# if a target crashes, panics, leaks, times out or runs out of memory; the
# input that did it is left in fuzz/artifacts/TARGET/. What the fuzzer
# generates goes to a temporary directory and is thrown away.
#
#   scripts/fuzz.sh            # CI's short run: 60 s per target
#   scripts/fuzz.sh 3600       # the long run: an hour per target
#   scripts/fuzz.sh 600 request  # one target
#
# Needs rustup's nightly toolchain and cargo-fuzz; installs both if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "installing the nightly toolchain (cargo fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
cd fuzz
cargo +nightly fuzz build
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in "${targets[@]}"; do
  echo "fuzzing $target for ${seconds}s"
  mkdir -p "$work/$target"
  # -rss_limit_mb: the broker's own bound on what one request may cost is
  # far below this; -timeout: no input may take 10 s.
  # libFuzzer prints a line per new input; keep them in a file and show
  # only the end of it: the final stats, or the crash and its input.
  if ! cargo +nightly fuzz run "$target" "$work/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 >"$work/$target.log" 2>&1; then
    tail -n 120 "$work/$target.log"
    echo "fuzz target $target failed; its input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  tail -n 12 "$work/$target.log"
done
