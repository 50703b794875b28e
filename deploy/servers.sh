#!/bin/sh
# Database servers for the tests, the benchmarks and the real-server demo:
# a PostgreSQL, a MariaDB and a Redis as ordinary processes with their data
# in one scratch folder, listening on 127.0.0.1 only. No system service.
#
#   deploy/servers.sh start DIR [pg|pgstandby|my|redis ...]
#                                                   init (first time) and start
#   deploy/servers.sh stop  DIR [pg|pgstandby|my|redis ...]   clean shutdown
#   deploy/servers.sh kill  DIR  pg|pgstandby|my|redis   SIGKILL, for crash tests
#   deploy/servers.sh promote DIR                   the standby becomes the primary
#   deploy/servers.sh env   DIR                     print the URIs as variables
#   deploy/servers.sh newdb DIR NAME [pg|my]        a fresh database NAME on
#                                                   PostgreSQL and/or MariaDB
#
# pgstandby (only when asked for, after pg): a streaming replica of the
# PostgreSQL server, made with pg_basebackup, which the primary waits for
# at every COMMIT (synchronous_standby_names = 'FIRST 1 (zsaga_standby)'):
# an acknowledged commit is on both. `env` then prints ZSAGA_PG_HA, a
# multi-host URI that libpq resolves to whichever of the two is the primary
# (with ?target_session_attrs=read-write). After `kill DIR pg` and `promote
# DIR`, the standby is the primary and waits for nobody; the old primary is
# not brought back (a real failover would rebuild it with pg_rewind).
#
# Ports: the first free from ZSAGA_PG_PORT (25432), ZSAGA_MY_PORT (23306),
# ZSAGA_REDIS_PORT (26379) and ZSAGA_REDIS_TLS_PORT (26479) up, chosen at
# the first start and kept in DIR/ports, so two folders never share a
# server. They lie below the kernel's ephemeral range (32768 up): a test's
# zsagad on HTTP port 0, or any outgoing connection, never takes one
# between the choice and the server's bind.
# TLS: every server also speaks TLS, with a certificate for 127.0.0.1 and
# localhost signed by a throwaway CA made at the first start (DIR/tls/ca.crt);
# Redis on a port of its own. `env` prints the TLS URIs too, and an ACL user
# on Redis (zsaga, password zsaga-redis) for AUTH USER PASS; MariaDB's
# zsaga_tls user (password zsaga-tls) may only connect over TLS.
# Durability is the servers' safest: PostgreSQL fsync + synchronous_commit
# on, InnoDB flush at every commit, Redis appendonly with appendfsync
# ZSAGA_REDIS_FSYNC (always by default; see docs/operations.md).
# Started as root, the servers run as the postgres and mysql users that
# Debian's packages create, as their programs require.
set -eu
cmd=${1:?usage: servers.sh start|stop|kill|env|newdb DIR ...}
dir=${2:?usage: servers.sh $cmd DIR ...}
shift 2
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Ports handed out and not yet given back, "port folder" a line: two sets
# started at once must not choose the same free port before either
# listens. A line whose folder is gone (a run killed before its stop) is
# dropped at the next reservation, so none is held for good.
reserved=${TMPDIR:-/tmp}/zsaga-servers.ports
free_port() { # the first port from $1 up that nothing listens on or holds
    p=$1
    while ss -Hltn "sport = :$p" | grep -q . || grep -q "^$p " "$reserved" 2>/dev/null; do
        p=$((p + 1))
    done
    echo "$p"
}

if [ ! -f "$dir/ports" ]; then
    (
        flock 9
        touch "$reserved"
        while read -r port owner; do
            [ ! -d "$owner" ] || echo "$port $owner"
        done <"$reserved" >"$reserved.new"
        mv "$reserved.new" "$reserved"
        pg_port=$(free_port "${ZSAGA_PG_PORT:-25432}")
        my_port=$(free_port "${ZSAGA_MY_PORT:-23306}")
        redis_port=$(free_port "${ZSAGA_REDIS_PORT:-26379}")
        printf '%s %s\n' "$pg_port" "$dir" "$my_port" "$dir" "$redis_port" "$dir" >>"$reserved"
        redis_tls_port=$(free_port "${ZSAGA_REDIS_TLS_PORT:-26479}")
        printf '%s %s\n' "$redis_tls_port" "$dir" >>"$reserved"
        pg2_port=$(free_port "${ZSAGA_PG2_PORT:-25532}")
        printf '%s %s\n' "$pg2_port" "$dir" >>"$reserved"
        printf 'pg_port=%s\nmy_port=%s\nredis_port=%s\nredis_tls_port=%s\npg2_port=%s\n' \
            "$pg_port" "$my_port" "$redis_port" "$redis_tls_port" "$pg2_port" >"$dir/ports"
    ) 9>"$reserved.lock"
fi
. "$dir/ports"
# give_back: this set's ports are free for others again (after a full stop).
give_back() {
    (
        flock 9
        grep -vxF "$pg_port $dir
$my_port $dir
$redis_port $dir
${redis_tls_port:-0} $dir
${pg2_port:-0} $dir" "$reserved" >"$reserved.new" || true
        mv "$reserved.new" "$reserved"
    ) 9>"$reserved.lock"
}
which=${*:-pg my redis}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
root=false
[ "$(id -u)" -ne 0 ] || root=true

# The server users must reach the folder: open the scratch folder and its
# parents for traversal only (o+x), as mktemp makes them private.
if $root; then
    d=$dir
    while [ "$d" != / ]; do
        runuser -u postgres -- test -x "$d" 2>/dev/null || chmod o+x "$d"
        d=$(dirname "$d")
    done
fi

as_user() { # USER CMD...: run a server program as its own user when root
    u=$1
    shift
    if $root; then runuser -u "$u" -- "$@"; else "$@"; fi
}

wait_for() { # WHAT CMD...: poll until CMD succeeds, for up to 60 s
    what=$1
    shift
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge 600 ]; then
            echo "servers: $what did not come up; its log:" >&2
            tail -n 30 "$dir/$what.log" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}

# A CA and one server certificate (127.0.0.1, localhost) for all three,
# with a private key per server owned by the user that runs it.
tls_init() {
    t=$dir/tls
    [ ! -f "$t/server.crt" ] || return 0
    mkdir -p "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=zsaga test CA" \
        -keyout "$t/ca.key" -out "$t/ca.crt" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$t/server.key" -out "$t/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$t/ext"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
        -days 30 -extfile "$t/ext" -out "$t/server.crt" >/dev/null 2>&1
    for u in pg my redis; do
        install -m 600 "$t/server.key" "$t/$u.key"
    done
    if $root; then
        chown postgres "$t/pg.key"
        chown mysql "$t/my.key"
    fi
    chmod 644 "$t/ca.crt" "$t/server.crt"
    chmod 755 "$t"
}
[ "$cmd" != start ] || tls_init

pg_sql() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U zsaga -d postgres -c "$1"; }
pg2_sql() { psql -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg2_port" -U zsaga -d postgres -c "$1"; }
my_sql() {
    mariadb --no-defaults --protocol=socket -S "$dir/my/mysqld.sock" -u root -e "$1"
}

pg_start() {
    if [ ! -f "$dir/pg/PG_VERSION" ]; then
        mkdir -p "$dir/pg"
        ! $root || chown postgres "$dir/pg"
        as_user postgres "$pgbin/initdb" -D "$dir/pg" -U zsaga --auth=trust -E UTF8 \
            --locale=C.UTF-8 >"$dir/pg-init.log" 2>&1 || {
            cat "$dir/pg-init.log" >&2
            exit 1
        }
    fi
    pg_run pg "$pg_port"
    wait_for pg pg_sql "SELECT 1"
}

# pg_run FOLDER PORT [OPTIONS]: start PostgreSQL on DIR/FOLDER, logging to
# DIR/FOLDER.log. The socket lives in the data folder: /var/run/postgresql
# may not exist.
pg_run() {
    d=$1
    port=$2
    shift 2
    touch "$dir/$d.log"
    ! $root || chown postgres "$dir/$d.log"
    as_user postgres "$pgbin/pg_ctl" -D "$dir/$d" -l "$dir/$d.log" -s -o \
        "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/$d \
         -c max_connections=200 -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB \
         -c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/pg.key $*" \
        start
}

# The standby: a base backup of the primary (its WAL streamed through a
# replication slot, so none it needs is recycled), started in recovery.
# The primary then waits for it at every COMMIT; start returns once
# the standby is attached as synchronous.
pgstandby_start() {
    running pg || {
        echo "servers: pgstandby needs pg started first" >&2
        exit 2
    }
    if [ ! -f "$dir/pg2/PG_VERSION" ]; then
        mkdir -p "$dir/pg2"
        chmod 700 "$dir/pg2"
        ! $root || chown postgres "$dir/pg2"
        pg_sql "SELECT pg_create_physical_replication_slot('zsaga_standby')
                WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'zsaga_standby')" >/dev/null
        as_user postgres "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$pg_port" -U zsaga -D "$dir/pg2" \
            -X stream -S zsaga_standby -R >"$dir/pg2-init.log" 2>&1 || {
            cat "$dir/pg2-init.log" >&2
            exit 1
        }
    fi
    pg_run pg2 "$pg2_port" "-c hot_standby=on -c primary_slot_name=zsaga_standby \
        -c synchronous_standby_names= \
        -c primary_conninfo='host=127.0.0.1 port=$pg_port user=zsaga application_name=zsaga_standby'"
    wait_for pg2 pg2_sql "SELECT 1"
    pg_sql "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (zsaga_standby)'" >/dev/null
    pg_sql "SELECT pg_reload_conf()" >/dev/null
    wait_for pg2 sh -c "psql -X -t -A -h 127.0.0.1 -p $pg_port -U zsaga -d postgres -c \
        \"SELECT sync_state FROM pg_stat_replication WHERE application_name = 'zsaga_standby'\" |
        grep -qx sync"
}

my_start() {
    if [ ! -d "$dir/my/data/mysql" ]; then
        mkdir -p "$dir/my/data"
        ! $root || chown -R mysql "$dir/my"
        as_user mysql mariadb-install-db --no-defaults --datadir="$dir/my/data" \
            --auth-root-authentication-method=normal --skip-test-db \
            >"$dir/my-init.log" 2>&1 || {
            cat "$dir/my-init.log" >&2
            exit 1
        }
    fi
    touch "$dir/my.log"
    ! $root || chown mysql "$dir/my.log"
    as_user mysql mariadbd --no-defaults --datadir="$dir/my/data" --port="$my_port" \
        --bind-address=127.0.0.1 --socket="$dir/my/mysqld.sock" --pid-file="$dir/my/mysqld.pid" \
        --log-error="$dir/my.log" --skip-name-resolve --max-connections=300 \
        --innodb-flush-log-at-trx-commit=1 --sync-binlog=1 --innodb-buffer-pool-size=256M \
        --character-set-server=utf8mb4 --transaction-isolation=READ-COMMITTED \
        --ssl-cert="$dir/tls/server.crt" --ssl-key="$dir/tls/my.key" --ssl-ca="$dir/tls/ca.crt" \
        >/dev/null 2>&1 &
    wait_for my my_sql "SELECT 1"
    my_sql "CREATE USER IF NOT EXISTS 'zsaga'@'127.0.0.1' IDENTIFIED BY 'zsaga';
            GRANT ALL ON *.* TO 'zsaga'@'127.0.0.1';
            CREATE USER IF NOT EXISTS 'zsaga_tls'@'127.0.0.1' IDENTIFIED BY 'zsaga-tls' REQUIRE SSL;
            GRANT ALL ON *.* TO 'zsaga_tls'@'127.0.0.1'"
}

redis_start() {
    mkdir -p "$dir/redis"
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" --daemonize yes \
        --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis.log" --save "" \
        --appendonly yes --appendfsync "${ZSAGA_REDIS_FSYNC:-always}" --databases 256 \
        --tls-port "$redis_tls_port" --tls-cert-file "$dir/tls/server.crt" \
        --tls-key-file "$dir/tls/redis.key" --tls-ca-cert-file "$dir/tls/ca.crt" \
        --tls-auth-clients no
    wait_for redis redis-cli -h 127.0.0.1 -p "$redis_port" ping
    redis-cli -h 127.0.0.1 -p "$redis_port" ACL SETUSER zsaga on '>zsaga-redis' '~*' '&*' '+@all' \
        >/dev/null
}

pid_of() { # the server's pid, or nothing
    case $1 in
    pg) f=$dir/pg/postmaster.pid ;;
    pgstandby) f=$dir/pg2/postmaster.pid ;;
    my) f=$dir/my/mysqld.pid ;;
    redis) f=$dir/redis/redis.pid ;;
    esac
    [ -f "$f" ] && head -n 1 "$f" || true
}

running() {
    p=$(pid_of "$1")
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null
}

stop_one() {
    p=$(pid_of "$1")
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
    case $1 in
    pg) as_user postgres "$pgbin/pg_ctl" -D "$dir/pg" -s -m fast stop ;;
    pgstandby) as_user postgres "$pgbin/pg_ctl" -D "$dir/pg2" -s -m fast stop ;;
    *)
        kill -TERM "$p"
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 300 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        ;;
    esac
}

case $cmd in
start)
    for s in $which; do
        if running "$s"; then continue; fi
        case $s in
        pg) pg_start ;;
        pgstandby) pgstandby_start ;;
        my) my_start ;;
        redis) redis_start ;;
        *) echo "servers: unknown server '$s' (pg, pgstandby, my or redis)" >&2 && exit 2 ;;
        esac
    done
    ;;
stop)
    for s in $which; do stop_one "$s"; done
    [ -n "${*:-}" ] || stop_one pgstandby
    [ -n "${*:-}" ] || give_back
    ;;
kill)
    p=$(pid_of "$1")
    [ -n "$p" ] || exit 0
    # PostgreSQL's backends outlive a killed postmaster for a moment and
    # hold its shared memory: wait for them too, so a restart can start.
    kids=$(pgrep -P "$p" || true)
    kill -KILL "$p" 2>/dev/null || true
    for k in $p $kids; do
        while kill -0 "$k" 2>/dev/null; do sleep 0.05; done
    done
    ;;
env)
    echo "ZSAGA_PG=postgresql://zsaga@127.0.0.1:$pg_port"
    echo "ZSAGA_MY=mysql://zsaga:zsaga@127.0.0.1:$my_port"
    echo "ZSAGA_REDIS=redis://127.0.0.1:$redis_port"
    ca=$dir/tls/ca.crt
    echo "ZSAGA_TLS_CA=$ca"
    echo "ZSAGA_PG_TLS_Q='?sslmode=verify-full&sslrootcert=$ca'"
    echo "ZSAGA_MY_TLS=mysql://zsaga_tls:zsaga-tls@127.0.0.1:$my_port"
    echo "ZSAGA_MY_TLS_Q='?ssl-mode=VERIFY_IDENTITY&ssl-ca=$ca'"
    echo "ZSAGA_REDIS_TLS=rediss://zsaga:zsaga-redis@127.0.0.1:$redis_tls_port"
    echo "ZSAGA_REDIS_TLS_Q='?cacert=$ca'"
    if [ -f "$dir/pg2/PG_VERSION" ]; then
        echo "ZSAGA_PG_HA=postgresql://zsaga@127.0.0.1:$pg_port,127.0.0.1:$pg2_port"
        echo "ZSAGA_PG_HA_Q='?target_session_attrs=read-write'"
    fi
    ;;
promote)
    running pgstandby || {
        echo "servers: no standby to promote" >&2
        exit 2
    }
    as_user postgres "$pgbin/pg_ctl" -D "$dir/pg2" -s -w promote
    wait_for pg2 sh -c "[ \"\$(psql -X -t -A -h 127.0.0.1 -p $pg2_port -U zsaga -d postgres \
        -c 'SELECT pg_is_in_recovery()')\" = f ]"
    ;;
newdb)
    name=${1:?usage: servers.sh newdb DIR NAME [pg|my]}
    on=${2:-pg my}
    if [ "$on" != my ] && running pg; then
        pg_sql "DROP DATABASE IF EXISTS $name" && pg_sql "CREATE DATABASE $name"
    fi
    if [ "$on" != pg ] && running my; then
        my_sql "DROP DATABASE IF EXISTS $name; CREATE DATABASE $name"
    fi
    ;;
*) echo "servers: unknown command '$cmd'" >&2 && exit 2 ;;
esac
