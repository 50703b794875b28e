# The database drivers' contract on each backend, against live servers:
# quiet statements (in order, read after, errors never lost, dropped by a
# rollback), UPDATE ... RETURNING, and PostgreSQL's round trips
# (tests/tools/zsaga-dbcheck.c says what each check means).
. "$(dirname "$0")/lib.sh"
new_db banking  # PostgreSQL in this mode
new_db payments # MariaDB
for uri in "sqlite:$T/check.db" "$(uri_of banking)" "$(uri_of payments)"; do
    "$BIN/tests/zsaga-dbcheck" "$uri" || fail "the driver's contract on $uri"
done
pass "drivers"
