#!/bin/sh
# Install every Debian package that building, the demo and the tests need.
# Idempotent: packages already present are left alone, and apt is only called
# when something is missing. Run as root (or with sudo available).
set -eu

PKGS="build-essential cmake pkg-config clang-format
libzmq3-dev libczmq-dev libmsgpack-dev liblmdb-dev lmdb-utils
libsqlite3-dev sqlite3 libcmocka-dev libjansson-dev libsodium-dev
libpq-dev default-libmysqlclient-dev libhiredis-dev
libinih-dev liburiparser-dev libssl-dev openssl python3-zmq python3-msgpack
python3-psycopg2 python3-mysqldb python3-redis python3-pip python3-setuptools python3-wheel
postgresql mariadb-server mariadb-client redis-server redis-tools
iproute2 procps psmisc faketime
libmicrohttpd-dev libcurl4-openssl-dev libsystemd-dev curl
python3-prometheus-client prometheus chromium"

# Node.js and npm for the Node.js library (clients/node), from Debian when
# the machine has none of its own.
command -v node >/dev/null && command -v npm >/dev/null || PKGS="$PKGS nodejs npm"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian's server packages try to start system services; the project runs its
# own servers on loopback, so forbid service starts during the install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
