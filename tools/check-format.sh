#!/bin/sh
# tools/check-format.sh [--fix]: check that the C sources (src/, include/,
# tests/, examples/, bench/, fuzz/) are formatted as .clang-format says.
# Prints each file that differs and how many of its lines would change, and
# fails if any does.  --fix rewrites the files in place instead.
set -eu
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$fmt" ]; then
    echo "check-format: clang-format-14 not found (apt-get install clang-format-14)" >&2
    exit 2
fi
files=$(git ls-files '*.c' '*.h' 2>/dev/null ||
        find src include tests examples bench fuzz -name '*.[ch]')
if [ "${1:-}" = --fix ]; then
    echo "$files" | xargs "$fmt" -i --style=file
    exit 0
fi
bad=0 total=0
for f in $files; do
    n=$("$fmt" --style=file "$f" | diff "$f" - | grep -c '^<' || true)
    if [ "$n" -gt 0 ]; then
        echo "check-format: $f: $n lines would change"
        bad=$((bad + 1))
        total=$((total + n))
    fi
done
if [ "$bad" -gt 0 ]; then
    echo "check-format: $bad files, $total lines differ from .clang-format (tools/check-format.sh --fix)" >&2
    exit 1
fi
echo "check-format: all files formatted"
