#!/bin/sh
# demo.sh BUILD_DIR: the README's demo, the word counts of this repository's
# documentation, mapped and reduced by a worker Pool
# (examples/mapreduce_wordcount.c, the port of the seed's SimpleMapReduce).
set -eu
b=${1:-build}
cd "$(dirname "$0")/.."
echo "== $b/examples/mapreduce_wordcount docs/*.md"
exec "$b/examples/mapreduce_wordcount" docs/*.md
