#!/usr/bin/env bash
# Attack measurements (issue: security hardening). Usage: bench/hardening.sh
# Builds the release binary, starts it on the embedded store with the
# default settings, runs bench/hardening.py against it, and writes
# bench/REPORT-hardening.md. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18181}
cargo build --release --locked
BIN=$PWD/target/release/tokenmint
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
env_json=$(printf '{"TOKENMINT_DATA_DIR": "%s"}' "$work")
TOKENMINT_DATA_DIR=$work TOKENMINT_LISTEN=127.0.0.1:$PORT TOKENMINT_LOG=warn "$BIN" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
results=$(TOKENMINT_BIN=$BIN python3 bench/hardening.py "http://127.0.0.1:$PORT" "$env_json")
metrics=$(curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^tokenmint_(argon2_busy_total|auth_failures_total)' || true)
{
  echo "# Attack measurements"
  echo
  echo "\`bash bench/hardening.sh\` on $(nproc) cores, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD),"
  echo "embedded SQLite store, default settings, load generator on the same cores."
  echo
  echo '```json'
  echo "$results"
  echo '```'
  echo
  echo "Server counters afterwards:"
  echo
  echo '```text'
  echo "$metrics"
  echo '```'
} > bench/REPORT-hardening.md
cat bench/REPORT-hardening.md
