#!/bin/sh
# tools/abi-check.sh LIBRARY SOURCE_DIR: compare the ABI of the shared
# library LIBRARY with the baseline abi/SONAME.abi in SOURCE_DIR (abidiff,
# with abi/libmp.suppr: only types of the public headers count).  Added
# functions pass; a removed or changed function or variable, or a changed
# public type, fails, unless the soversion was bumped: then there is no
# baseline for the new soname yet, and tools/abi-baseline.sh writes it.
set -u
lib=$(readlink -f "$1")
src=$2
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
base="$src/abi/$soname.abi"
if [ ! -f "$base" ]; then
    if ls "$src"/abi/*.abi >/dev/null 2>&1; then
        echo "abi-check: $soname is a new soversion; record its baseline with tools/abi-baseline.sh"
        exit 0
    fi
    echo "abi-check: no baseline in $src/abi (tools/abi-baseline.sh writes it)" >&2
    exit 1
fi
out=$(abidiff --exported-interfaces-only --suppressions "$src/abi/libmp.suppr" "$base" "$lib")
rc=$?
echo "$out"
# abidiff's status is a bit mask: 1 error, 2 usage, 4 ABI change, 8 incompatible.
if [ $((rc & 3)) -ne 0 ]; then
    echo "abi-check: abidiff failed ($rc)" >&2
    exit 1
fi
# Added functions also set bit 4: only removals and changes are breaks.
broken=$(echo "$out" | sed -n 's/.*summary: \([0-9]*\) Removed.*, \([0-9]*\) Changed.*/\1 \2/p' |
         awk '{ n += $1 + $2 } END { print n + 0 }')
if [ $((rc & 8)) -ne 0 ] || [ "$broken" -ne 0 ]; then
    echo "abi-check: incompatible ABI change from $base: undo it, or bump the soversion" \
         "in meson.build and run tools/abi-baseline.sh" >&2
    exit 1
fi
echo "abi-check: $soname is compatible with its baseline"
