#!/bin/sh
# build.sh: set up a fresh Debian machine, build libmp, and run the demo or
# the tests.  Run as root or with sudo.
#
#   ./build.sh demo    build and run the demo
#   ./build.sh test    build and run the whole test suite, then again under
#                      AddressSanitizer + UndefinedBehaviorSanitizer, then
#                      the long checks: ThreadSanitizer, fuzzing, gcc's
#                      static analyzer (docs/checks.md)
#   ./build.sh coverage  the suite in a coverage build, and gcovr's report
#
# MP_QUICK=1 ./build.sh test skips the long checks, for quick local runs
# only: CI never sets it.
set -eu
cd "$(dirname "$0")"

what=${1:-demo}
case $what in
demo|test|coverage) ;;
*) echo "usage: $0 demo|test|coverage" >&2; exit 2 ;;
esac
quick=${MP_QUICK:-0}

# --- install what is missing -------------------------------------------------
need=""
command -v meson >/dev/null 2>&1 || need="$need meson"
command -v ninja >/dev/null 2>&1 || need="$need ninja-build"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
command -v python3 >/dev/null 2>&1 || need="$need python3"
command -v musl-gcc >/dev/null 2>&1 || need="$need musl-tools"
[ -f /usr/include/cmocka.h ] || need="$need libcmocka-dev"
[ -f /usr/include/gmp.h ] || [ -f /usr/include/x86_64-linux-gnu/gmp.h ] || need="$need libgmp-dev"
[ -f /usr/include/tommath.h ] || need="$need libtommath-dev"
command -v c++ >/dev/null 2>&1 || need="$need g++"
command -v abidiff >/dev/null 2>&1 || need="$need abigail-tools"
command -v cmake >/dev/null 2>&1 || need="$need cmake"
command -v scdoc >/dev/null 2>&1 || need="$need scdoc"
command -v man >/dev/null 2>&1 || need="$need man-db"
# The MPI pool (docs/mpi.md) and its benchmark beside mpi4py.futures.
command -v mpicc >/dev/null 2>&1 || need="$need libopenmpi-dev"
command -v mpiexec >/dev/null 2>&1 || need="$need openmpi-bin"
# (for Debian's /usr/bin/python3, whatever python3 is first in PATH)
[ -f /usr/lib/python3/dist-packages/mpi4py/__init__.py ] || need="$need python3-mpi4py"
if [ "$what" = test ] && [ "$quick" != 1 ]; then
    # ThreadSanitizer (gcc's libtsan), libFuzzer, the format check.
    [ -n "$(gcc -print-file-name=libtsan.so | grep /)" ] || need="$need libtsan2"
    command -v clang-14 >/dev/null 2>&1 || need="$need clang-14"
    [ -d /usr/lib/llvm-14/lib/clang ] && ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
        need="$need libfuzzer-14-dev"
    command -v clang-format-14 >/dev/null 2>&1 || need="$need clang-format-14"
fi
if [ "$what" = coverage ]; then
    command -v gcovr >/dev/null 2>&1 || need="$need gcovr"
fi
if [ -n "$need" ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "build.sh: installing:$need"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $need >/dev/null
fi

# --- build -------------------------------------------------------------------
setup() { # dir [meson options...]
    dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        if ! meson setup "$dir" "$@" >"$dir.setup.log" 2>&1; then
            tail -n 40 "$dir.setup.log" >&2
            return 1
        fi
        rm -f "$dir.setup.log"
    fi
    # Quiet when it works; the compiler's words when it does not.
    if ! meson compile -C "$dir" >"$dir/compile.log" 2>&1; then
        tail -n 60 "$dir/compile.log" >&2
        return 1
    fi
}

if [ "$what" = demo ]; then
    setup build
    exec tools/demo.sh build
fi

# Each stage's wall time, printed at the end.
times=""
t0=$(date +%s)
stage_done() { # name
    t1=$(date +%s)
    times="$times
  $1: $((t1 - t0)) s"
    t0=$t1
}

if [ "$what" = coverage ]; then
    # Children that end with _exit write their counters too (MP_COVERAGE
    # in src/internal/mp.h).  docs/checks.md explains the report.
    setup build-cov -Db_coverage=true -Dbench=false
    find build-cov -name '*.gcda' -delete
    meson test -C build-cov --print-errorlogs --num-processes 2 \
        --no-suite slow --timeout-multiplier 3 || true
    gcovr -r . --filter 'src/' --object-directory build-cov \
        --html-details build-cov/coverage.html --print-summary -s
    exit 0
fi

# --- test: three phases; stages of a phase run side by side ------------------
# On a 2-core machine most tests wait rather than compute, so running the
# independent stages together halves the wall time (the suites are written to
# pass on a loaded machine).  A stage in the background writes to its own log,
# printed when it ends; its time is measured from its own start.
logs=build-logs
rm -rf "$logs"
mkdir -p "$logs"
pids=""
bg() { # name function: run the function in the background
    ( s=$(date +%s); "$2"; echo "build.sh: $1: $(($(date +%s) - s)) s" ) \
        >"$logs/$1.log" 2>&1 &
    pids="$pids $!:$1"
}
wait_all() { # wait for every background stage; fail if one failed
    failed=""
    for p in $pids; do
        if wait "${p%%:*}"; then st=ok; else st=FAILED; failed="$failed ${p#*:}"; fi
        echo "=== build.sh: stage ${p#*:}: $st"
        if [ $st = ok ]; then tail -n 3 "$logs/${p#*:}.log"; else cat "$logs/${p#*:}.log"; fi
    done
    pids=""
    if [ -n "$failed" ]; then
        echo "build.sh: failed:$failed" >&2
        exit 1
    fi
}

build_others() { # clang (build only) and the two musl trees
    if command -v clang >/dev/null 2>&1; then
        CC=clang setup build-clang --werror
    fi
    setup build-musl --werror --native-file musl.ini -Ddefault_library=shared -Dmpi=disabled \
        -Dunit_tests=shim -Dbench=false
    setup build-musl-static --werror --native-file musl.ini -Ddefault_library=static \
        -Dmpi=disabled -Dunit_tests=none -Dbench=false
}
# musl: no cmocka for it here, so the unit tests run on tests/cmocka_shim;
# with libmp.so every suite but the slow and packaging ones (the installed
# files do not depend on the libc), with libmp.a the examples under fork (a
# statically linked program that spawns calls mp_spawn_main).
musl_tests() {
    meson test -C build-musl --print-errorlogs --num-processes 2 \
        --no-suite slow --no-suite packaging
    meson test -C build-musl-static --print-errorlogs --num-processes 2 --suite examples
}
asan_tests() {
    setup build-asan --werror -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbench=false
    meson test -C build-asan --print-errorlogs --num-processes 2 \
        --no-suite slow --timeout-multiplier 3
}
# The long checks (docs/checks.md).
long_checks() {
    # The arena moves to TSan's application range in this build
    # (src/heap.c); tools/tsan.supp lists what TSan cannot see across
    # processes.
    echo "build.sh: the threaded unit tests under ThreadSanitizer"
    setup build-tsan --werror -Db_sanitize=thread -Db_lundef=false -Dbench=false \
        -Dc_args=-Wno-tsan
    meson test -C build-tsan --print-errorlogs --num-processes 2 --suite tsan \
        --timeout-multiplier 3
    echo "build.sh: fuzzing every decoder of outside bytes (tools/fuzz.sh)"
    CC=clang-14 setup build-fuzz --werror -Dfuzz=true -Dtests=false -Dbench=false \
        -Db_sanitize=address,undefined -Db_lundef=false
    tools/fuzz.sh build-fuzz "${MP_FUZZ_SECONDS:-5}"
    echo "build.sh: gcc -fanalyzer over src/ (tools/analyze.py)"
    python3 tools/analyze.py build
    # The tree is formatted as .clang-format says (tools/check-format.sh
    # --fix rewrites it); MP_CHECK_FORMAT=0 skips the check locally.
    if [ "${MP_CHECK_FORMAT:-1}" = 1 ]; then
        tools/check-format.sh
    fi
}

# Phase 1: the gcc suite, while the other trees compile.
setup build --werror
bg others build_others
meson test -C build --print-errorlogs --num-processes 2
stage_done "gcc build and the whole suite"
wait_all
stage_done "rest of the clang and musl builds"

# Phase 2: musl's suites, ASan+UBSan's, and (unless MP_QUICK=1) TSan,
# fuzzing, the static analyzer and the format check, side by side.
bg musl musl_tests
[ "${MP_SKIP_SANITIZE:-0}" = 1 ] || bg asan asan_tests
if [ "$quick" = 1 ]; then
    echo "build.sh: MP_QUICK=1: ThreadSanitizer, fuzzing and analysis skipped"
else
    bg long long_checks
fi
wait_all
stage_done "musl, sanitizers and the long checks"
echo "build.sh: stage times:$times"
