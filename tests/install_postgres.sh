#!/bin/sh
# The PostgreSQL tests start a throwaway server of their own (tests/postgres.py) from the
# server binaries, initdb and pg_ctl. This installs Debian's `postgresql` package when they are
# missing and does nothing when they are there, so CI on a fresh machine can run the tests.
set -eu

have_server() {
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            return 0
        fi
    done
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}

if have_server; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "tests/install_postgres.sh: no apt-get here: install the PostgreSQL server" \
         "(initdb, pg_ctl) with this system's package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
install() {
    $SUDO apt-get install -y --no-install-recommends postgresql
}
# a fresh machine may have no package lists yet: update, then try again
install || { $SUDO apt-get update && install; }
have_server
