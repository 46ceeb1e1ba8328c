#!/bin/sh
# demo.sh BUILD_DIR: run the demo programs from a build directory.
set -eu
b=${1:-build}
ran=0
for ex in simple names exitcode daemon_join; do
    if [ -x "$b/examples/$ex" ]; then
        echo "== examples/$ex"
        "$b/examples/$ex"
        ran=1
    fi
done
[ $ran = 1 ] || echo "demo: no example built yet"
