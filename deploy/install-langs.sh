#!/bin/sh
# The Node.js library's dependencies and the Node.js example's, exactly as
# their lockfiles pin them (npm ci). The Python library needs only Debian's
# packages (deploy/install-deps.sh). Idempotent: a tree already installed
# from the same lockfile is left alone.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
for d in clients/node deploy/examples/notify/node; do
    stamp="$top/$d/node_modules/.zsaga-lock"
    if [ -f "$stamp" ] && cmp -s "$top/$d/package-lock.json" "$stamp"; then
        continue
    fi
    echo "install-langs: npm ci in $d"
    (cd "$top/$d" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$top/$d/package-lock.json" "$stamp"
done
