#!/usr/bin/env bash
# Counters shared by two instances on one PostgreSQL (bench/README.md,
# "Shared counters"). Usage: bash bench/counters.sh   (DURATION=10)
#
#   quota, far from its limit  both instances under load for one client
#       with a quota it cannot reach: every token issued must be counted
#       once in the store — none lost, none doubled;
#   quota, at its limit        the same with a quota of QUOTA tokens an
#       hour: exactly QUOTA tokens are issued across both instances;
#   a flood of wrong secrets   both instances refusing wrong secrets for
#       16 ids: how many writes the shared failure counters cost.
# Each row records the database's committed transactions and the
# counters table's written rows during the run. Writes bench/REPORT-counters.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
QUOTA=${QUOTA:-3000}
PG_ADMIN_URL=${TOKENMINT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "needs PostgreSQL on 127.0.0.1:5432"; exit 1; }
cargo build --release --locked
BIN=$PWD/target/release/tokenmint
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS tokenmint_counters" 2>/dev/null' EXIT
psql "$PG_ADMIN_URL" -qc 'DROP DATABASE IF EXISTS tokenmint_counters' -c 'CREATE DATABASE tokenmint_counters'
DB="${PG_ADMIN_URL%/*}/tokenmint_counters"
export DATABASE_URL=$DB TOKENMINT_KEY_ENCRYPTION_KEY="$(head -c32 /dev/urandom | base64)" \
  TOKENMINT_DATA_DIR="$work/data" TOKENMINT_LOG=warn
"$BIN" migrate > /dev/null

for port in 18111 18112; do
  TOKENMINT_LISTEN=127.0.0.1:$port "$BIN" serve > "$work/$port.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done

creds() { # id secret
  echo "Basic $(printf '%s' "$1:$2" | base64 -w0)"
}
stats() { # committed transactions, counter rows written
  psql "$DB" -Atc "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
    (SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = 'counters')"
}
load_both() { # creds-file: wrk on both instances at once, 16 connections each
  local loads=()
  for port in 18111 18112; do
    wrk -t1 -c16 -d"${DURATION}s" --timeout 10s -s bench/load.lua \
      "http://127.0.0.1:$port/token" -- "$1" > "$work/wrk-$port" & loads+=($!)
  done
  wait "${loads[@]}"
}
answers() { # "requests non2xx" summed over both instances
  cat "$work"/wrk-181* | awk '/^RESULT/ {r += $2; n += $4} END {print r, n}'
}
rows=()
issued_total() { # tokens issued, summed over both servers' /metrics
  local sum=0 n
  for port in 18111 18112; do
    n=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^tokenmint_tokens_issued_total/ {print $2}')
    sum=$((sum + ${n%.*}))
  done
  echo "$sum"
}
measure() { # label quota-id creds-file
  read -r commits0 writes0 < <(stats | tr '|' ' ')
  issued_before=$(issued_total)
  load_both "$3"
  sleep 0.2   # the last flush
  read -r commits1 writes1 < <(stats | tr '|' ' ')
  read -r requests refused < <(answers)
  local counted="-" issued
  [ "$2" = - ] || counted=$(psql "$DB" -Atc "SELECT COALESCE(SUM(count), 0) FROM counters WHERE name = 'quota:$2'")
  # What the servers say they issued (wrk misses the answers in flight
  # when it stops), less what they had issued before.
  issued=$(( $(issued_total) - issued_before ))
  rows+=("$1|$requests|$issued|$counted|$(( (commits1 - commits0) / DURATION ))|$(( (writes1 - writes0) / DURATION ))")
  echo "$1: requests $requests, issued $issued (answered $((requests - refused))), counted $counted, commits/s $(( (commits1 - commits0) / DURATION )), counter rows/s $(( (writes1 - writes0) / DURATION ))"
}

far=$("$BIN" client create far --scope a --token-quota 100000000/h --json | jq -r .client_secret)
creds far "$far" > "$work/far.txt"
measure "quota, far from its limit" far "$work/far.txt"

near=$("$BIN" client create near --scope a --token-quota "$QUOTA/h" --json | jq -r .client_secret)
creds near "$near" > "$work/near.txt"
measure "quota of $QUOTA/h, at its limit" near "$work/near.txt"

: > "$work/wrong.txt"
for i in $(seq 1 16); do creds "nobody-$i" "wrong-secret-$i" >> "$work/wrong.txt"; done
# The flood comes from one address: the per-address limit would stop it
# counting after 100 failures a window, so it is off here.
kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=()
for port in 18111 18112; do
  TOKENMINT_THROTTLE_ADDRESS_FAILURES=off TOKENMINT_THROTTLE_CLIENT_FAILURES=1000000 \
    TOKENMINT_LISTEN=127.0.0.1:$port "$BIN" serve > "$work/$port.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
measure "a flood of wrong secrets" - "$work/wrong.txt"
failures=$(psql "$DB" -Atc "SELECT COALESCE(SUM(count), 0) FROM counters WHERE name LIKE 'fail-pair:%'")

{
  echo "# tokenmint: counters shared by two instances"
  echo
  echo "Generated by \`bench/counters.sh\` on $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)."
  echo "Two release servers on one PostgreSQL, $(nproc) cores shared with wrk (16 connections to each"
  echo "server, ${DURATION} s). Commits and counter rows per second are the whole database's during the run."
  echo
  echo "| scenario | requests answered | tokens issued (servers' metrics) | counted in the store | commits/s | counter rows written/s |"
  echo "|---|---:|---:|---:|---:|---:|"
  for row in "${rows[@]}"; do
    IFS='|' read -r label requests issued counted commits writes <<<"$row"
    echo "| $label | $requests | $issued | $counted | $commits | $writes |"
  done
  echo
  echo "Failed authentications counted in the store during the flood (per id and address): $failures."
} > bench/REPORT-counters.md
cat bench/REPORT-counters.md
