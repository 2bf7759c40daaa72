#!/usr/bin/env bash
# How fast a change made on one instance reaches another: two servers on one
# store — PostgreSQL (a scratch database), then two processes on one SQLite
# data folder — and bench/propagation.py disabling clients on one while
# asking the other. Usage: bash bench/propagation.sh   (ROUNDS=50)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-50}
PG_ADMIN_URL=${TOKENMINT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cargo build --release --locked
BIN=$PWD/target/release/tokenmint
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

run() { # name env...
  local name=$1; shift
  env "$@" TOKENMINT_LISTEN=127.0.0.1:18101 "$BIN" serve > "$work/a.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18101/healthz >/dev/null && break; sleep 0.1; done
  env "$@" TOKENMINT_LISTEN=127.0.0.1:18102 "$BIN" serve > "$work/b.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18102/healthz >/dev/null && break; sleep 0.1; done
  local secret token
  secret=$(env "$@" "$BIN" client create "admin-$name" --scope tokenmint:admin --json | jq -r .client_secret)
  token=$(curl -sf -u "admin-$name:$secret" -d grant_type=client_credentials http://127.0.0.1:18101/token | jq -r .access_token)
  printf '%-8s ' "$name"
  python3 bench/propagation.py http://127.0.0.1:18101 http://127.0.0.1:18102 "$token" "$ROUNDS"
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=()
}

if pg_isready -q -h 127.0.0.1 -p 5432; then
  psql "$PG_ADMIN_URL" -qc 'DROP DATABASE IF EXISTS tokenmint_propagation' -c 'CREATE DATABASE tokenmint_propagation'
  run postgres DATABASE_URL="${PG_ADMIN_URL%/*}/tokenmint_propagation" \
    TOKENMINT_KEY_ENCRYPTION_KEY="$(head -c32 /dev/urandom | base64)" TOKENMINT_DATA_DIR="$work/pg"
  psql "$PG_ADMIN_URL" -qc 'DROP DATABASE IF EXISTS tokenmint_propagation'
fi
# Two processes on one folder: the second waits for the first's migrations.
run sqlite TOKENMINT_DATA_DIR="$work/sqlite"
