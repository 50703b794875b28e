#!/bin/sh
# Run the decoder's fuzz target under libFuzzer (clang) for a while:
#   deploy/fuzz.sh [SECONDS]
# New inputs that reach new code are merged into tests/fuzz/corpus, which
# ctest replays in every test run.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/install-deps.sh"
command -v clang >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq clang >/dev/null || sudo apt-get install -y -qq clang >/dev/null; }
out=$(mktemp -d /tmp/zsaga-fuzz.XXXXXX)
m="$top/messages"
clang -g -O1 -fsanitize=fuzzer,address,undefined -DZSAGA_LIBFUZZER -I"$top" \
    $(pkg-config --cflags msgpack) "$top/tests/fuzz/fuzz_msg.c" "$m/mp.c" "$m/msg.c" \
    "$m/msg_params.c" "$m/msg_saga.c" $(pkg-config --libs msgpack) -o "$out/fuzz"
mkdir -p "$out/found"
"$out/fuzz" -max_total_time="${1:-120}" -max_len=4096 "$out/found" "$top/tests/fuzz/corpus"
"$out/fuzz" -merge=1 "$top/tests/fuzz/corpus" "$out/found"
rm -rf "$out"
