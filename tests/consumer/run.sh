#!/bin/sh
# run.sh BUILD_DIR SOURCE_DIR: install libmp into a temporary prefix and build
# programs outside the tree against it, as a user would:
#   1. pkg-config --cflags --libs libmp (shared library);
#   2. pkg-config --static --libs libmp, linked fully static with libmp.a;
#   3. <libmp.h> with <gmp.h>, <tommath.h> and BSD <mp.h>'s names;
#   4. libmp as a meson subproject found with dependency('libmp');
#   5. find_package(libmp CONFIG) in a CMake project, shared and static.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
here="$src/tests/consumer"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
pcdir=$(dirname "$(find "$tmp/root" -name libmp.pc | head -n 1)")
prefix=$(sed -n 's/^prefix=//p' "$pcdir/libmp.pc")
export PKG_CONFIG_PATH="$pcdir"
pc() { pkg-config --define-variable=prefix="$tmp/root$prefix" "$@" libmp; }

echo "1. shared: cc consumer.c \$(pkg-config --cflags --libs libmp)"
$cc -Wall -Wextra -Werror -o "$tmp/consumer" "$here/consumer.c" $(pc --cflags) $(pc --libs)
libdir=$(pc --variable=libdir)
LD_LIBRARY_PATH="$libdir" "$tmp/consumer"
for m in spawn forkserver; do
    MP_START_METHOD=$m LD_LIBRARY_PATH="$libdir" "$tmp/consumer"
done
if LD_LIBRARY_PATH="$libdir" ldd "$tmp/consumer" | grep -q 'libmp\.so'; then :; else
    echo "the shared build did not link libmp.so" >&2; exit 1
fi

static_flag=-static
if pc --static --libs | grep -q -- '-lmpi' &&
   [ ! -f "$($cc -print-file-name=libmpi.a)" ]; then
    # libmp built with MPI (docs/mpi.md) links the MPI library, which has
    # no static archive here (Debian's Open MPI): libmp.a is still linked
    # statically, the rest dynamically.
    echo "2. static: no libmpi.a, so libmp.a in a dynamically linked program"
    full_static=0
    static_flag="-Wl,-Bstatic -lmp -Wl,-Bdynamic"
    $cc -Wall -Wextra -Werror -o "$tmp/consumer-static" "$here/consumer.c" \
        $(pc --cflags) -L"$(pc --variable=libdir)" $static_flag \
        $(pc --static --libs | sed 's/ -lmp / /')
else
    echo "2. static: cc -static consumer.c \$(pkg-config --static --libs libmp)"
    full_static=1
    $cc -Wall -Wextra -Werror -static -o "$tmp/consumer-static" "$here/consumer.c" \
        $(pc --cflags) $(pc --static --libs)
fi
"$tmp/consumer-static"
# Spawned children and the forkserver of a fully static program: main calls
# mp_spawn_main.  Without it, spawn and forkserver refuse with MP_ESPAWNMAIN
# (a dynamically linked program has libmp's start-up hook instead).
if [ "$full_static" = 1 ]; then
    $cc -Wall -Wextra -Werror -static -DCONSUMER_NO_SPAWN_MAIN -o "$tmp/consumer-nomain" \
        "$here/consumer.c" $(pc --cflags) $(pc --static --libs)
    "$tmp/consumer-nomain"
fi
for m in spawn forkserver; do
    MP_START_METHOD=$m "$tmp/consumer-static"
    if [ "$full_static" = 1 ]; then
        MP_START_METHOD=$m "$tmp/consumer-nomain" | grep -q 'consumer refused: MP_ESPAWNMAIN'
    fi
done

echo "3. <libmp.h> with <gmp.h>, <tommath.h> and BSD's <mp.h> names"
$cc -Wall -Wextra -Werror -o "$tmp/with-gmp" "$here/with_gmp.c" $(pc --cflags) $(pc --libs) -lgmp
LD_LIBRARY_PATH="$libdir" "$tmp/with-gmp"
if [ -f /usr/include/tommath.h ]; then
    $cc -Wall -Wextra -Werror -DWITH_TOMMATH -o "$tmp/with-tommath" "$here/with_gmp.c" \
        $(pc --cflags) $(pc --libs) -lgmp -ltommath
    LD_LIBRARY_PATH="$libdir" "$tmp/with-tommath"
else
    echo "tommath.h missing (libtommath-dev): not checked" >&2; exit 1
fi

echo "4. meson subproject"
mkdir -p "$tmp/sub/subprojects"
ln -s "$src" "$tmp/sub/subprojects/libmp"
cp "$here/consumer.c" "$tmp/sub/"
cat > "$tmp/sub/meson.build" <<'MESON'
project('consumer', 'c', default_options : ['warning_level=3', 'werror=true'])
libmp = dependency('libmp', fallback : ['libmp', 'libmp_dep'],
                   default_options : ['tests=false', 'bench=false', 'default_library=static'])
executable('consumer', 'consumer.c', dependencies : libmp)
MESON
( cd "$tmp/sub" && meson setup b --wrap-mode=forcefallback >/dev/null && meson compile -C b >/dev/null )
"$tmp/sub/b/consumer"

echo "5. CMake: find_package(libmp CONFIG), libmp::libmp (shared) and libmp::static"
if command -v cmake >/dev/null 2>&1; then
    mkdir -p "$tmp/cm"
    cp "$here/consumer.c" "$tmp/cm/"
    cat > "$tmp/cm/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.13)
project(consumer C)
find_package(libmp 0.1 CONFIG REQUIRED)
if(NOT libmp_SHARED_FOUND OR NOT libmp_STATIC_FOUND)
  message(FATAL_ERROR "libmp's CMake package lacks the shared or the static library")
endif()
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE libmp::libmp)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static PRIVATE libmp::static)
CMAKE
    ( cd "$tmp/cm" && cmake -S . -B b -DCMAKE_PREFIX_PATH="$tmp/root$prefix" \
          -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >/dev/null && cmake --build b >/dev/null )
    # The shared one runs through the build tree's RPATH, with no LD_LIBRARY_PATH.
    if ldd "$tmp/cm/b/consumer" | grep -q "$tmp/root.*libmp\.so"; then :; else
        echo "the CMake consumer did not link the installed libmp.so" >&2; exit 1
    fi
    if ldd "$tmp/cm/b/consumer_static" | grep -q 'libmp\.so'; then
        echo "libmp::static linked libmp.so" >&2; exit 1
    fi
    for m in fork spawn forkserver; do
        MP_START_METHOD=$m "$tmp/cm/b/consumer"
        MP_START_METHOD=$m "$tmp/cm/b/consumer_static"
    done
else
    echo "cmake missing: the CMake package is not checked" >&2; exit 1
fi
echo "consumer tests passed"
