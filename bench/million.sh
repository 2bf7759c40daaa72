#!/usr/bin/env bash
# A million clients in the store (bench/README.md, "A million clients").
# Usage: bash bench/million.sh   (MILLION=1000000 DURATION=10 CONNECTIONS=32)
#
# For each store (SQLite, and PostgreSQL when reachable): 8 warm clients and
# a 5,000-client restart storm with a small store, then the same with a
# million more clients bulk-loaded (copies of one template row, made with SQL
# in seconds rather than through the API), and the latency of client-list
# pages over the million. Writes bench/REPORT-million.md.
set -euo pipefail
cd "$(dirname "$0")/.."

MILLION=${MILLION:-1000000}
STORM_CLIENTS=${STORM_CLIENTS:-5000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18080}
PG_ADMIN_URL=${TOKENMINT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REPORT=bench/REPORT-million.md

cargo build --release --locked
BIN=$PWD/target/release/tokenmint
work=$(mktemp -d)
server=""
trap '[ -z "$server" ] || kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
rows=()
pages=()

start_server() {
  env "$@" TOKENMINT_LISTEN=127.0.0.1:$PORT TOKENMINT_LOG=warn "$BIN" serve >>"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start"; cat "$work/server.log"; exit 1
}
stop_server() { kill -TERM "$server"; wait "$server" || true; server=""; }
result() { # store scenario wrk-output
  read -r _ requests seconds non2xx sockerr p50 p99 max < <(grep '^RESULT' "$3")
  local rps; rps=$(awk -v r="$requests" -v s="$seconds" 'BEGIN {printf "%.0f", r / s}')
  if grep -q '^STORM' "$3"; then
    read -r _ answers seconds failed < <(grep '^STORM' "$3")
    rps=$(awk -v r="$answers" -v s="$seconds" 'BEGIN {printf "%.0f", r / s}'); non2xx=$failed
  fi
  rows+=("$1|$2|$rps|$p50|$p99|$non2xx")
  echo "$1 $2: $rps/s p99 $((p99 / 1000)) ms non-2xx $non2xx"
}
warm() { # store label
  while read -r auth; do
    curl -sf -o /dev/null -H "Authorization: $auth" -d grant_type=client_credentials "http://127.0.0.1:$PORT/token"
  done < "$work/warm.txt"
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s bench/load.lua \
    "http://127.0.0.1:$PORT/token" -- "$work/warm.txt" > "$work/out"
  result "$1" "$2" "$work/out"
}
storm() { # store label: every storm client once, from a fresh process
  wrk -t1 -c"$CONNECTIONS" -d20s --timeout 10s -s bench/storm.lua \
    "http://127.0.0.1:$PORT/token" -- "$work/storm.txt" > "$work/out"
  result "$1" "$2" "$work/out"
}
page_latency() { # store label query: p50 and max ms of 50 list pages
  local times=()
  for i in $(seq 1 50); do
    local after; after=$(printf 'm-%07d' $(( (RANDOM * 32768 + RANDOM) % MILLION )))
    times+=("$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $admin_token" \
      "http://127.0.0.1:$PORT/admin/clients?limit=100&after=$after$3")")
  done
  local stats; stats=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f|%.1f", a[int(NR/2)+1]*1000, a[NR]*1000}')
  pages+=("$1|$2|$stats")
  echo "$1 list $2: p50|max ms $stats"
}

bench_store() { # name env...
  local name=$1; shift
  rm -rf "$work/data"; : > "$work/warm.txt"
  for i in $(seq 1 8); do
    secret=$(env "$@" "$BIN" client create "bench-$i" --scope "orders:read orders:write" --json | jq -r .client_secret)
    echo "Basic $(printf '%s' "bench-$i:$secret" | base64 -w0)" >> "$work/warm.txt"
  done
  local admin template
  admin=$(env "$@" "$BIN" client create bench-admin --scope tokenmint:admin --json | jq -r .client_secret)
  template=$(env "$@" "$BIN" client create template --scope "orders:read" --json | jq -r .client_secret)
  # The storm's clients: the first STORM_CLIENTS copies of the template.
  bulk_load "$name" 1 "$STORM_CLIENTS" "$@"
  seq 1 "$STORM_CLIENTS" | while read -r n; do
    echo "Basic $(printf '%s' "$(printf 'm-%07d' "$n"):$template" | base64 -w0)"
  done > "$work/storm.txt"

  start_server "$@"; warm "$name" "warm, 10 clients"; stop_server
  start_server "$@"; storm "$name" "storm, small store"; stop_server
  local started; started=$(date +%s)
  bulk_load "$name" $((STORM_CLIENTS + 1)) "$MILLION" "$@"
  echo "$name: loaded $MILLION clients in $(( $(date +%s) - started )) s"
  start_server "$@"; warm "$name" "warm, $MILLION clients"; stop_server
  start_server "$@"; storm "$name" "storm, $MILLION clients"
  admin_token=$(curl -sf -u "bench-admin:$admin" -d grant_type=client_credentials \
    "http://127.0.0.1:$PORT/token" | jq -r .access_token)
  page_latency "$name" "after a random id" ""
  page_latency "$name" "prefix" "&prefix=m-00012"
  page_latency "$name" "enabled=true" "&enabled=true"
  page_latency "$name" "scope (every client has it)" "&scope=orders:read"
  stop_server
}

bulk_load() { # store from to env...: copies of the template row, ids m-0000001…
  local name=$1 from=$2 to=$3; shift 3
  if [ "$name" = sqlite ]; then
    local db=$work/data/tokenmint.db cols
    cols=$(sqlite3 "$db" "SELECT group_concat(name, ', ') FROM pragma_table_info('clients') WHERE name != 'client_id'")
    sqlite3 "$db" "WITH RECURSIVE s(n) AS (SELECT $from UNION ALL SELECT n + 1 FROM s WHERE n < $to)
      INSERT INTO clients (client_id, $cols) SELECT printf('m-%07d', n), $cols FROM s, clients WHERE client_id = 'template';"
  else
    local cols
    cols=$(psql "$PG_URL" -Atc "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'clients' AND column_name <> 'client_id'")
    psql "$PG_URL" -qc "INSERT INTO clients (client_id, $cols) SELECT 'm-' || lpad(n::text, 7, '0'), $cols FROM generate_series($from, $to) n, (SELECT * FROM clients WHERE client_id = 'template') t; ANALYZE clients;"
  fi
}

export TOKENMINT_DATA_DIR="$work/data"
STORES=${STORES:-sqlite postgres}   # e.g. STORES=sqlite
[[ " $STORES " != *" sqlite "* ]] || bench_store sqlite
if [[ " $STORES " == *" postgres "* ]] && pg_isready -q -h 127.0.0.1 -p 5432; then
  psql "$PG_ADMIN_URL" -qc 'DROP DATABASE IF EXISTS tokenmint_bench' -c 'CREATE DATABASE tokenmint_bench'
  PG_URL="${PG_ADMIN_URL%/*}/tokenmint_bench"
  bench_store postgres DATABASE_URL="$PG_URL" TOKENMINT_KEY_ENCRYPTION_KEY="$(head -c32 /dev/urandom | base64)"
  psql "$PG_ADMIN_URL" -qc 'DROP DATABASE IF EXISTS tokenmint_bench'
fi

{
  echo "# tokenmint: a million clients"
  echo
  echo "Generated by \`bench/million.sh\` on $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)."
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; wrk on the same machine, 1 thread,"
  echo "$CONNECTIONS connections. \`warm\`: 8 clients repeating their secret for ${DURATION} s; \`storm\`:"
  echo "$STORM_CLIENTS clients never verified by the (fresh) process, each asking once."
  echo
  echo "| store | scenario | tokens/s | p50 ms | p99 ms | non-2xx |"
  echo "|---|---|---:|---:|---:|---:|"
  for row in "${rows[@]}"; do
    IFS='|' read -r store scenario rps p50 p99 n <<<"$row"
    awk -v s="$store" -v sc="$scenario" -v r="$rps" -v a="$p50" -v b="$p99" -v n="$n" \
      'BEGIN {printf "| %s | %s | %d | %.2f | %.2f | %d |\n", s, sc, r, a / 1000, b / 1000, n}'
  done
  echo
  echo "\`GET /admin/clients?limit=100\` over the million, 50 pages each starting after a random id:"
  echo
  echo "| store | filter | p50 ms | max ms |"
  echo "|---|---|---:|---:|"
  for row in "${pages[@]}"; do
    IFS='|' read -r store filter p50 max <<<"$row"
    echo "| $store | $filter | $p50 | $max |"
  done
} > "$REPORT"
cat "$REPORT"
