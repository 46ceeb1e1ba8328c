#!/bin/sh
# build.sh: set up a fresh Debian machine, build libmp, and run the demo or
# the tests.  Run as root or with sudo.
#
#   ./build.sh demo    build and run the demo
#   ./build.sh test    build and run the whole test suite, then again under
#                      AddressSanitizer + UndefinedBehaviorSanitizer
set -eu
cd "$(dirname "$0")"

what=${1:-demo}
case $what in
demo|test) ;;
*) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

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
        meson setup "$dir" "$@" >/dev/null
    fi
    meson compile -C "$dir" >/dev/null
}

if [ "$what" = demo ]; then
    setup build
    exec tools/demo.sh build
fi

setup build --werror
meson test -C build --print-errorlogs --num-processes 2

if command -v clang >/dev/null 2>&1; then
    echo "build.sh: the library, tests and examples with clang (build only)"
    CC=clang setup build-clang --werror
fi

# musl: no cmocka for it here, so the unit tests run on tests/cmocka_shim;
# with libmp.so every suite but the slow one, with libmp.a the examples
# under fork (a statically linked program that spawns calls mp_spawn_main).
echo "build.sh: with musl-gcc: the suite against libmp.so, the examples against libmp.a"
setup build-musl --werror --native-file musl.ini -Ddefault_library=shared -Dmpi=disabled \
    -Dunit_tests=shim -Dbench=false
meson test -C build-musl --print-errorlogs --num-processes 2 --no-suite slow
setup build-musl-static --werror --native-file musl.ini -Ddefault_library=static -Dmpi=disabled \
    -Dunit_tests=none -Dbench=false
meson test -C build-musl-static --print-errorlogs --num-processes 2 --suite examples

if [ "${MP_SKIP_SANITIZE:-0}" != 1 ]; then
    echo "build.sh: the suite again under AddressSanitizer + UndefinedBehaviorSanitizer"
    setup build-asan --werror -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbench=false
    meson test -C build-asan --print-errorlogs --num-processes 2 \
        --no-suite slow --timeout-multiplier 3
fi
