# The journal's PostgreSQL backend on its own (unit/test_journal_pg.c),
# in a database of its own on the test servers.
. "$(dirname "$0")/lib.sh"
servers_up
"$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_jpg" pg >/dev/null || fail "no database"
ZSAGA_TEST_PG_URI="$ZSAGA_PG/${TAG}_jpg" "$BIN/tests/test_journal_pg" || fail "test_journal_pg"
pass "journal on PostgreSQL"
