# Shared by the worker benchmarks (bench-db.sh, bench-langs.sh): the build
# everyone runs (RelWithDebInfo, -O2; a -O3 Release build of the worker
# measured slower on the PostgreSQL step here, not yet understood),
# PostgreSQL, MariaDB and Redis in a scratch folder with their durable
# settings (stopped at exit), and the machine and durability lines.
# Sourced with top set; sets bin and dir, and the servers' ZSAGA_* URIs.
"$top/deploy/install-deps.sh"
"$top/deploy/build.sh"
bin=$top/build
dir=$(mktemp -d /tmp/zsaga-bench-db.XXXXXX)
cleanup() {
    "$top/deploy/servers.sh" stop "$dir/servers" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
"$top/deploy/servers.sh" start "$dir/servers" >"$dir/servers.log" 2>&1 ||
    { cat "$dir/servers.log"; exit 1; }
eval "$("$top/deploy/servers.sh" env "$dir/servers")"

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)," \
    "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
    "$(df -T "$dir" | awk 'NR == 2 { print $2 }') under $dir"
echo "durability: PostgreSQL fsync=on synchronous_commit=on; MariaDB" \
    "innodb_flush_log_at_trx_commit=1; Redis appendonly yes appendfsync" \
    "${ZSAGA_REDIS_FSYNC:-always}; SQLite WAL synchronous=FULL"
