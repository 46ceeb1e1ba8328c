#!/bin/sh
# tools/check-man.sh LIBRARY MANDIR: every public mp_* function (not the
# internal mp__ entry point the libmp-spawn helper calls) the shared library
# exports (nm -D --defined-only) has a page in MANDIR/man3, and every page
# in MANDIR renders with man -l at 80 columns without a warning.
set -u
lib=$1
dir=$2
fail=0
syms=$(nm -D --defined-only "$lib" | awk '$3 ~ /^mp_/ && $3 !~ /^mp__/ { print $3 }')
[ -n "$syms" ] || { echo "check-man: no mp_ symbol in $lib" >&2; exit 1; }
n=0
for s in $syms; do
    n=$((n + 1))
    if [ ! -f "$dir/man3/$s.3" ]; then
        echo "check-man: $s is exported but has no man page (document it in its header with" \
             "MP_EXTERN and a comment block; tools/mkman.py makes the page)"
        fail=1
    fi
done
pages=$(ls "$dir"/man3/*.3 "$dir"/man7/*.7 | wc -l)
# man -l is slow to start: render four pages at a time.
bad=$(ls "$dir"/man3/*.3 "$dir"/man7/*.7 | xargs -P 4 -n 8 sh -c '
    for p; do
        warn=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
        [ -z "$warn" ] || printf "check-man: %s renders with warnings:\n%s\n" "$p" "$warn"
    done' sh)
if [ -n "$bad" ]; then
    echo "$bad"
    fail=1
fi
[ $fail = 0 ] && echo "check-man: $n exported functions have pages; $pages pages render cleanly"
exit $fail
