# scripts/postgres.sh — sourced by the benchmark scripts: a throwaway PostgreSQL server.
#
#   pg_start PORT   initdb into a temporary folder and run postgres on 127.0.0.1:PORT (as
#                   the `postgres` user when this runs as root); sets PG_URL and PG_BIN, or
#                   returns 1 when PostgreSQL's server programs are not installed
#   pg_reset        drops hookserver's tables (a fresh inbox)
#   pg_stop         stops the server and removes its folder
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
PG_URL="" PG_PID="" PG_DIR="" PG_PORT=""

pg_start() {
  [[ -n $PG_BIN && -x $PG_BIN/initdb ]] || return 1
  PG_PORT=$1
  PG_DIR=$(mktemp -d)
  local as_pg=()
  if [[ $(id -u) == 0 ]]; then chown postgres "$PG_DIR"; as_pg=(runuser -u postgres --); fi
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U hookserver --auth=trust --no-instructions >/dev/null
  setsid "${as_pg[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT" -k "$PG_DIR" \
    -c listen_addresses=127.0.0.1 -c max_connections=300 >"$PG_DIR.log" 2>&1 &
  PG_PID=$!
  local tries=0
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
    ((tries++ < 300)) || { echo "postgres did not start: $(tail -3 "$PG_DIR.log")" >&2; return 1; }
    sleep 0.1
  done
  PG_URL=postgres://hookserver@127.0.0.1:$PG_PORT/postgres
}

pg_reset() {
  "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U hookserver -d postgres \
    -c 'DROP TABLE IF EXISTS hookserver_deliveries, hookserver_keys, hookserver_errors, hookserver_meta' 2>/dev/null
}

pg_stop() {
  [[ -n $PG_PID ]] || return 0
  kill -INT -- "-$PG_PID" 2>/dev/null
  wait "$PG_PID" 2>/dev/null
  rm -rf "$PG_DIR" "$PG_DIR.log"
  PG_PID=""
}
