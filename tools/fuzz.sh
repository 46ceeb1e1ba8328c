#!/bin/sh
# tools/fuzz.sh BUILD_DIR [SECONDS]: run every libFuzzer harness built in
# BUILD_DIR/fuzz (meson setup -Dfuzz=true, clang) for SECONDS each
# (default 5) over its seed corpus fuzz/corpus/<name>/.
#
# The corpus in the tree is only read: new inputs go to a scratch directory
# (deleted at the end).  A crash, leak, timeout or out-of-memory fails the
# script and leaves the input in BUILD_DIR/fuzz/artifacts/; add it to
# fuzz/corpus/<name>/ as a regression input once the bug is fixed.
set -eu
build=$1
secs=${2:-5}
src=$(cd "$(dirname "$0")/.." && pwd)
arts=$build/fuzz/artifacts
mkdir -p "$arts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for exe in "$build"/fuzz/fuzz_*; do
    [ -x "$exe" ] && [ -f "$exe" ] || continue
    name=${exe##*/fuzz_}
    mkdir -p "$scratch/$name"
    if "$exe" -max_total_time="$secs" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=0 \
        -artifact_prefix="$arts/$name-" \
        "$scratch/$name" "$src/fuzz/corpus/$name" >"$build/fuzz/$name.log" 2>&1; then
        runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$build/fuzz/$name.log")
        echo "fuzz: $name: ${runs:-?} runs, no failure"
    else
        echo "fuzz: $name FAILED (log: $build/fuzz/$name.log):" >&2
        grep -E 'ERROR|SUMMARY|^==' "$build/fuzz/$name.log" | head -20 >&2
        status=1
    fi
done
exit $status
