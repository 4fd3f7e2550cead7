#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (Debian's postgresql package):
#   pg.sh start DIR PORT   initialise a cluster in DIR (trust auth, loopback only), start it,
#                          create database `strongroom`, print its URL
#   pg.sh stop DIR         stop it (immediately: the directory is thrown away next)
# As root, the server runs as the `postgres` user (initdb refuses root).
set -euo pipefail
cmd=${1:?usage: pg.sh start DIR PORT | stop DIR}
dir=${2:?missing DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed: run ./scripts/test.sh" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $cmd in
start)
  port=${3:?missing PORT}
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    # The test's temporary directory is root's; the server only needs to reach its own.
    chmod o+x "$(dirname "$dir")"
    chown postgres: "$dir"
  fi
  as_pg "$bin/initdb" -D "$dir/data" -A trust -U strongroom --no-instructions -E UTF8 >/dev/null
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
  as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U strongroom strongroom
  echo "postgres://strongroom@127.0.0.1:$port/strongroom"
  ;;
stop)
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  ;;
*) echo "usage: pg.sh start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
