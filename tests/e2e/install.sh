#!/bin/sh
# libzsaga as a new user gets it: `cmake --install` into a prefix, then the
# notify example (deploy/examples/notify/c) built outside the tree against
# it through pkg-config, linked once to the shared library and once to the
# static one. Both binaries must run. The Python package builds as a wheel
# and an sdist, and the Node.js package packs. Leaves the prefix in
# BUILD/prefix and the example in BUILD/examples/notify-c for the
# conformance suite (the ctest fixture "libzsaga").
. "$(dirname "$0")/lib.sh"

P=$BIN/prefix
EX=$BIN/examples/notify-c
rm -rf "$P" "$EX"
cmake --install "$BIN" --prefix "$P" >"$T/install.log" 2>&1 || fail "cmake --install: $(tail -5 "$T/install.log")"

# What the library promises: a versioned soname, a static archive, the
# headers under include/zsaga, a pkg-config file that points at them.
[ -f "$P/lib/libzsaga.a" ] || fail "no static library"
soname=$(readelf -d "$P/lib/libzsaga.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
assert_eq libzsaga.so.0 "$soname" "the shared library's soname"
[ -L "$P/lib/libzsaga.so.0" ] && [ -f "$P/lib/libzsaga.so.0.1.0" ] || fail "no versioned shared library"
for h in zsaga.h client/zsc.h workers/wrk_runtime.h workers/wrk_step.h messages/msg.h; do
    [ -f "$P/include/zsaga/$h" ] || fail "header $h not installed"
done
for sym in wrk_main wrk_step_run zsc_new zsc_submit zsc_wait; do
    nm -D --defined-only "$P/lib/libzsaga.so" | grep -q " T $sym$" || fail "libzsaga.so does not export $sym"
done
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
assert_eq 0.1.0 "$(pkg-config --modversion zsaga)" "pkg-config's version"
pkg-config --cflags zsaga | grep -q -- "-I$P/lib/pkgconfig/../../include/zsaga" || fail "pkg-config --cflags: $(pkg-config --cflags zsaga)"

# The sanitizer build's objects need the sanitizer at link time too.
san=""
grep -q "^ZSAGA_SANITIZE:BOOL=ON" "$BIN/CMakeCache.txt" && san="-fsanitize=address,undefined"

# Out of the tree, with the example's own CMakeLists.txt.
cmake -S "$TOP/deploy/examples/notify/c" -B "$EX" -DCMAKE_C_FLAGS="$san" >"$T/example.log" 2>&1 &&
    cmake --build "$EX" >>"$T/example.log" 2>&1 || fail "the example does not build: $(tail -20 "$T/example.log")"
ldd "$EX/notify-worker" | grep -q "libzsaga.so.0 => $P/lib/" || fail "the example is not linked to the installed libzsaga"

# And by hand, against the static archive.
# shellcheck disable=SC2046
cc -std=gnu11 $san -o "$EX/notify-worker-static" "$TOP/deploy/examples/notify/c/notify.c" \
    $(pkg-config --cflags zsaga) "$P/lib/libzsaga.a" $(pkg-config --libs libczmq libzmq msgpack jansson \
    libpq mysqlclient hiredis sqlite3 libsodium liburiparser openssl libmicrohttpd inih libsystemd) \
    -lpthread 2>"$T/static.log" || fail "static link: $(tail -5 "$T/static.log")"
! ldd "$EX/notify-worker-static" | grep -q libzsaga || fail "the static build loads libzsaga.so"

for w in notify-worker notify-worker-static; do
    "$EX/$w" migrate up --db "sqlite:$T/$w.db" >"$T/$w.log" 2>&1 || fail "$w migrate: $(cat "$T/$w.log")"
    assert_eq "notify_outbox
notify_quota
zsaga_barrier
zsaga_schema" "$(sqlite3 "$T/$w.db" "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")" \
        "$w's tables"
done

# The Python package: a wheel and an sdist, from Debian's setuptools, offline.
(cd "$TOP/clients/python" && /usr/bin/python3 -m pip wheel --no-deps --no-build-isolation --no-index \
    -w "$T/dist" . >"$T/wheel.log" 2>&1) || fail "python wheel: $(tail -10 "$T/wheel.log")"
whl=$(ls "$T"/dist/zsaga-0.1.0-*.whl)
/usr/bin/python3 -c "import sys, zipfile; n = zipfile.ZipFile(sys.argv[1]).namelist(); \
    sys.exit(0 if {'zsaga/worker.py', 'zsaga/client.py', 'zsaga/py.typed'} <= set(n) else 1)" "$whl" ||
    fail "the wheel lacks modules"
(cd "$TOP/clients/python" && /usr/bin/python3 -c "from setuptools import setup; setup()" -q sdist -d "$T/dist" \
    >"$T/sdist.log" 2>&1) || fail "python sdist: $(tail -10 "$T/sdist.log")"
ls "$T"/dist/zsaga-0.1.0.tar.gz >/dev/null || fail "no sdist"
rm -rf "$TOP/clients/python/build" "$TOP/clients/python/zsaga.egg-info"

# The Node.js package: its files, and its TypeScript declarations compile.
(cd "$TOP/clients/node" && npm pack --dry-run --json 2>/dev/null) >"$T/pack.json"
for f in index.js index.d.ts lib/worker.js lib/client.js; do
    grep -q "\"path\": \"$f\"" "$T/pack.json" || fail "npm pack leaves out $f"
done
(cd "$TOP/clients/node" && npx --no-install tsc -p test/tsconfig.json) >"$T/tsc.log" 2>&1 ||
    fail "the TypeScript declarations: $(cat "$T/tsc.log")"
pass "libzsaga installs with soname $soname; the example builds against it shared and static; the Python wheel and sdist and the npm package build"
