#!/bin/sh
# tools/abi-baseline.sh [BUILD_DIR]: write the ABI baseline of the shared
# library built in BUILD_DIR (default: build) to abi/libmp.so.SOVERSION.abi,
# for tools/abi-check.sh (the "abi" test) to compare later builds with.
# Run it at a release, or after an intended incompatible change together
# with a soversion bump in meson.build; commit the file it writes.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
lib=$(readlink -f "$build/src/libmp.so")
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ -n "$soname" ] || { echo "abi-baseline.sh: no soname in $lib" >&2; exit 1; }
mkdir -p abi
abidw --exported-interfaces-only --no-corpus-path --no-comp-dir-path --out-file "abi/$soname.abi" "$lib"
echo "abi-baseline.sh: wrote abi/$soname.abi"
