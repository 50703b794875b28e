#!/bin/sh
# Failure injection under load, on demand: the soak.
#   deploy/chaos.sh [--minutes N] [--seed S] [--rate R]
# Installs what is missing, builds, and runs tests/chaos/chaos.sh: zsagad,
# nine workers on PostgreSQL, MariaDB and Redis servers of its own, the
# load, a fault every 8 s, then the independent checker. The test suite
# runs the same with 3 minutes; a soak gives more. Needs root (a network
# namespace for the partitioned worker). docs/operations.md explains the
# faults and the checks.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/install-deps.sh"
"$top/deploy/build.sh"
exec sh "$top/tests/chaos/chaos.sh" "$top/build" "$@"
