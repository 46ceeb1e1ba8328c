#!/bin/sh
# run.sh BUILD_DIR SOURCE_DIR: install libmp into a temporary prefix and build
# programs outside the tree against it, as a user would:
#   1. pkg-config --cflags --libs libmp (shared library);
#   2. pkg-config --static --libs libmp, linked fully static with libmp.a;
#   3. <libmp.h> with <gmp.h>, <tommath.h> and BSD <mp.h>'s names;
#   4. libmp as a meson subproject found with dependency('libmp').
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

echo "2. static: cc -static consumer.c \$(pkg-config --static --libs libmp)"
$cc -Wall -Wextra -Werror -static -o "$tmp/consumer-static" "$here/consumer.c" \
    $(pc --cflags) $(pc --static --libs)
"$tmp/consumer-static"
# Spawned children and the forkserver of a fully static program: libmp's
# constructor comes from libmp.a.
for m in spawn forkserver; do
    MP_START_METHOD=$m "$tmp/consumer-static"
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
echo "consumer tests passed"
