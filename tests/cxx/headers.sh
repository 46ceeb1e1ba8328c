#!/bin/sh
# headers.sh INCLUDE_DIR CXX [CXX ARGS...]: every public header compiles on
# its own as C++11, C++17 and C++20 with -Wall -Wextra -pedantic -Werror;
# <libmp.h> also inside a caller's extern "C" block.
set -u
inc=$1; shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for std in c++11 c++17 c++20; do
    for h in $(cd "$inc" && ls libmp.h libmp/*.h); do
        printf '#include <%s>\nint main() { return 0; }\n' "$h" > "$tmp/h.cpp"
        if ! "$@" -std=$std -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$inc" "$tmp/h.cpp" \
            > "$tmp/log" 2>&1; then
            echo "FAIL: <$h> as $std:"; cat "$tmp/log"; fail=1
        fi
    done
    printf 'extern "C" {\n#include <libmp.h>\n}\nint main() { return mp_version() == 0; }\n' > "$tmp/c.cpp"
    if ! "$@" -std=$std -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$inc" "$tmp/c.cpp" \
        > "$tmp/log" 2>&1; then
        echo "FAIL: <libmp.h> inside extern \"C\" as $std:"; cat "$tmp/log"; fail=1
    fi
done
[ $fail = 0 ] && echo "every header compiles as C++11, C++17 and C++20"
exit $fail
