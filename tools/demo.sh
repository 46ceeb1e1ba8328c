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
# The README's demo: the word counts of this repository's documentation,
# mapped and reduced by a worker Pool (examples/mapreduce_wordcount.c).
if [ -x "$b/examples/mapreduce_wordcount" ]; then
    echo "== examples/mapreduce_wordcount docs/*.md"
    "$b/examples/mapreduce_wordcount" docs/*.md
    ran=1
fi
[ $ran = 1 ] || echo "demo: no example built yet"
