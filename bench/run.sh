#!/usr/bin/env bash
# tokenmint load benchmark. Usage: bench/run.sh   (see bench/README.md)
#
# Builds the release binary, then for each store (embedded SQLite, and
# PostgreSQL when reachable) runs four scenarios, each against a freshly
# started server so that peak RSS is per scenario:
#   baseline  GET /healthz                                  (plain HTTP)
#   warm      POST /token, 8 clients repeating correct secrets
#   cold      POST /token, argon2 on every request (credential cache off)
#   attack    warm load measured while a second load sends wrong secrets,
#             for the warm clients' own ids and for unknown ids
# and writes bench/REPORT.md.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}          # seconds per scenario
CONNECTIONS=${CONNECTIONS:-32}    # wrk connections (1 thread)
PORT=${PORT:-18080}
SIGNING_ALG=${SIGNING_ALG:-ES256}  # ES256 (default), EdDSA or RS256
PG_ADMIN_URL=${TOKENMINT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# The default algorithm's report is REPORT.md; others get their own file.
REPORT=bench/REPORT.md
[ "$SIGNING_ALG" = ES256 ] || REPORT="bench/REPORT-$SIGNING_ALG.md"
# TRACING=1 adds a "warm, spans exported" scenario (OTLP/HTTP protobuf to a
# sink on 127.0.0.1 that accepts and drops them) beside the plain warm one.
TRACING=${TRACING:-}
[ -z "$TRACING" ] || REPORT="bench/REPORT-tracing.md"
# ASSERTIONS=1 measures clients without secrets beside the warm-secret one:
# private_key_jwt with EdDSA and ES256 keys (a fresh assertion, so a jti
# write, per request) and federated Kubernetes-shaped tokens (repeated).
ASSERTIONS=${ASSERTIONS:-}
[ -z "$ASSERTIONS" ] || REPORT="bench/REPORT-assertions.md"
# DPOP=1 measures DPoP-bound tokens (RFC 9449) beside the plain warm ones:
# the same warm secret clients, each request with a fresh EdDSA or ES256
# proof (one more signature check, and a jti in the replay window).
DPOP=${DPOP:-}
[ -z "$DPOP" ] || REPORT="bench/REPORT-dpop.md"
# QUOTA=1 measures the warm clients again with a token quota each (far
# above what the run can reach): the quota must not slow the warm path.
QUOTA=${QUOTA:-}
[ -z "$QUOTA" ] || REPORT="bench/REPORT-quota.md"
# STORM=1 is the restart storm: 5,000 clients never verified by this process
# (created through the admin API, then the server restarted) each ask once,
# over 32 connections; then the same clients warm.
STORM=${STORM:-}
STORM_CLIENTS=${STORM_CLIENTS:-5000}
[ -z "$STORM" ] || REPORT="bench/REPORT-storm.md"
OTLP_PORT=${OTLP_PORT:-18318}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v jq >/dev/null || { apt-get update -qq && apt-get install -y -qq jq; }
cargo build --release --locked
BIN=$PWD/target/release/tokenmint
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
if [ -n "$TRACING" ]; then
  python3 -c '
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
' "$OTLP_PORT" & sink=$!
  trap 'kill $sink 2>/dev/null || true; cleanup' EXIT
fi

start_server() { # extra env assignments...
  env "$@" TOKENMINT_LISTEN=127.0.0.1:$PORT TOKENMINT_LOG=info "$BIN" serve >>"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start"; cat "$work/server.log"; exit 1
}
stop_server() { # prints peak RSS in KiB
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  kill -TERM "$server"; wait "$server" || true; server=""
  echo "$hwm"
}
warm_up() { # creds-file: one token per client, so the measured run is steady state
  while read -r auth; do
    curl -sf -o /dev/null -H "Authorization: $auth" -d grant_type=client_credentials "http://127.0.0.1:$PORT/token"
  done < "$1"
}
load() { # result-file [creds-file]
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s bench/load.lua \
    "http://127.0.0.1:$PORT/$([ $# -gt 1 ] && echo token || echo healthz)" ${2:+-- "$2"} | grep '^RESULT' > "$1"
}

rows=()
record() { # store scenario result-file rss-kib
  read -r _ requests seconds non2xx sockerr p50 p99 max < "$3"
  local rps
  rps=$(awk -v r="$requests" -v s="$seconds" 'BEGIN {printf "%.0f", r / s}')
  rows+=("$1|$2|$rps|$p50|$p99|$max|$non2xx|$sockerr|$4")
  printf '%-8s %-9s %8s req/s  p50 %6.2f ms  p99 %7.2f ms  non-2xx %s\n' "$1" "$2" "$rps" \
    "$(awk -v v="$p50" 'BEGIN{print v/1000}')" "$(awk -v v="$p99" 'BEGIN{print v/1000}')" "$non2xx"
}

bench_store() { # name env...
  local name=$1; shift
  rm -rf "$work/data"; : > "$work/warm.txt"; : > "$work/attack.txt"
  for i in $(seq 1 8); do
    secret=$(env "$@" "$BIN" client create "bench-$i" --scope "orders:read orders:write" --json | jq -r .client_secret)
    echo "Basic $(printf '%s' "bench-$i:$secret" | base64 -w0)" >> "$work/warm.txt"
    echo "Basic $(printf '%s' "bench-$i:wrong-secret-$i" | base64 -w0)" >> "$work/attack.txt"
    echo "Basic $(printf '%s' "nobody-$i:wrong-secret-$i" | base64 -w0)" >> "$work/attack.txt"
  done

  start_server "$@"; load "$work/r"; record "$name" baseline "$work/r" "$(stop_server)"
  start_server "$@"; warm_up "$work/warm.txt"; load "$work/r" "$work/warm.txt"
  record "$name" warm "$work/r" "$(stop_server)"
  if [ -n "$ASSERTIONS" ]; then
    bench_assertions "$name" "$@"
    return
  fi
  if [ -n "$DPOP" ]; then
    bench_dpop "$name" "$@"
    return
  fi
  if [ -n "$STORM" ]; then
    bench_storm "$name" "$@"
    return
  fi
  if [ -n "$QUOTA" ]; then
    for i in $(seq 1 8); do
      env "$@" "$BIN" client update "bench-$i" --token-quota 100000000/h > /dev/null
    done
    start_server "$@"; warm_up "$work/warm.txt"; load "$work/r" "$work/warm.txt"
    record "$name" warm-quota "$work/r" "$(stop_server)"
    return
  fi
  if [ -n "$TRACING" ]; then
    start_server "$@" OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$OTLP_PORT"
    warm_up "$work/warm.txt"; load "$work/r" "$work/warm.txt"
    record "$name" warm+otel "$work/r" "$(stop_server)"
    return
  fi
  start_server "$@" TOKENMINT_CREDENTIAL_CACHE_TTL=0; load "$work/r" "$work/warm.txt"
  record "$name" cold "$work/r" "$(stop_server)"
  start_server "$@"; warm_up "$work/warm.txt"
  load "$work/attacker" "$work/attack.txt" & attacker=$!
  sleep 1
  load "$work/r" "$work/warm.txt"
  wait "$attacker"
  record "$name" attack "$work/r" "$(stop_server)"
  record "$name" attacker "$work/attacker" "-"
}

bench_assertions() { # name env...
  local name=$1; shift
  local issuer="http://127.0.0.1:$PORT" count=$((DURATION * 40000))
  python3 bench/assertions.py keys "$work"
  for alg in EdDSA ES256; do
    local lower=${alg,,}
    for i in $(seq 1 8); do
      env "$@" "$BIN" client create "bench-$lower-$i" --scope "orders:read" \
        --jwks-file "$work/$lower.jwks.json" >/dev/null
    done
    python3 bench/assertions.py own "$work" "$alg" 8 "$count" "$issuer" > "$work/own.txt"
    start_server "$@"; load "$work/r" "$work/own.txt"
    record "$name" "pkjwt-$lower" "$work/r" "$(stop_server)"
  done
  env "$@" "$BIN" issuer add cluster --issuer https://k8s.bench.example \
    --jwks-file "$work/cluster.jwks.json" >/dev/null
  for i in $(seq 1 8); do
    env "$@" "$BIN" client create "bench-sa-$i" --scope "orders:read" \
      --federated "cluster=system:serviceaccount:bench:sa-$i" >/dev/null
  done
  python3 bench/assertions.py federated "$work" 8 "$issuer" https://k8s.bench.example > "$work/fed.txt"
  start_server "$@"; load "$work/r" "$work/fed.txt"
  record "$name" federated "$work/r" "$(stop_server)"
}

bench_storm() { # name env...
  local name=$1; shift
  local admin
  admin=$(env "$@" "$BIN" client create bench-admin --scope tokenmint:admin --json | jq -r .client_secret)
  start_server "$@"
  local token
  token=$(curl -sf -u "bench-admin:$admin" -d grant_type=client_credentials \
    "http://127.0.0.1:$PORT/token" | jq -r .access_token)
  python3 bench/clients.py "http://127.0.0.1:$PORT" "$token" "$STORM_CLIENTS" storm > "$work/storm.txt"
  stop_server >/dev/null
  # A fresh process: every one of the clients is cold.
  start_server "$@"
  # wrk waits out -d after the storm is over: a short -d (every request
  # answered within it, or the STORM line is missing and the run fails).
  wrk -t1 -c"$CONNECTIONS" -d20s --timeout 10s -s bench/storm.lua \
    "http://127.0.0.1:$PORT/token" -- "$work/storm.txt" > "$work/storm.out"
  # The storm's own count and time, with wrk's latencies.
  local answers seconds failed sockerr p50 p99 max
  read -r _ answers seconds failed < <(grep '^STORM' "$work/storm.out")
  read -r _ _ _ _ sockerr p50 p99 max < <(grep '^RESULT' "$work/storm.out")
  echo "RESULT $answers $seconds $failed $sockerr $p50 $p99 $max" > "$work/r"
  record "$name" storm-cold "$work/r" "-"
  load "$work/r" "$work/storm.txt"
  record "$name" storm-warm "$work/r" "$(stop_server)"
}

bench_dpop() { # name env...
  local name=$1; shift
  python3 bench/assertions.py keys "$work"
  for alg in EdDSA ES256; do
    python3 bench/assertions.py dpop "$work" "$alg" $((DURATION * 30000)) \
      "http://127.0.0.1:$PORT/token" "$work/warm.txt" > "$work/dpop.txt"
    start_server "$@"; warm_up "$work/warm.txt"; load "$work/r" "$work/dpop.txt"
    record "$name" "dpop-${alg,,}" "$work/r" "$(stop_server)"
  done
}

export TOKENMINT_DATA_DIR="$work/data" TOKENMINT_SIGNING_ALG="$SIGNING_ALG"
bench_store sqlite
if pg_isready -q -h 127.0.0.1 -p 5432; then
  psql "$PG_ADMIN_URL" -qc 'DROP DATABASE IF EXISTS tokenmint_bench' -c 'CREATE DATABASE tokenmint_bench'
  bench_store postgres DATABASE_URL="${PG_ADMIN_URL%/*}/tokenmint_bench" \
    TOKENMINT_KEY_ENCRYPTION_KEY="$(head -c32 /dev/urandom | base64)"
  psql "$PG_ADMIN_URL" -qc 'DROP DATABASE IF EXISTS tokenmint_bench'
fi

{
  echo "# tokenmint benchmark report"
  echo
  echo "Generated by \`bench/run.sh\` on $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)."
  echo "Machine: $(nproc) cores ($(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}')),"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB memory, $(uname -sr); load generator on the same machine:"
  echo "wrk, 1 thread, $CONNECTIONS connections, ${DURATION} s per scenario. $SIGNING_ALG tokens, log level info."
  echo
  echo "| store | scenario | req/s | vs baseline | p50 ms | p99 ms | max ms | non-2xx | socket errors | peak RSS MiB |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for row in "${rows[@]}"; do
    IFS='|' read -r store scenario rps p50 p99 max non2xx sockerr rss <<<"$row"
    base=$(printf '%s\n' "${rows[@]}" | awk -F'|' -v s="$store" '$1 == s && $2 == "baseline" {print $3}')
    awk -v store="$store" -v sc="$scenario" -v rps="$rps" -v base="$base" -v p50="$p50" -v p99="$p99" \
        -v max="$max" -v n="$non2xx" -v se="$sockerr" -v rss="$rss" 'BEGIN {
      printf "| %s | %s | %d | %.1f %% | %.2f | %.2f | %.2f | %d | %d | %s |\n", store, sc, rps,
        100 * rps / base, p50 / 1000, p99 / 1000, max / 1000, n, se, (rss == "-" ? "-" : sprintf("%.1f", rss / 1024))
    }'
  done
  echo
  if [ -n "$STORM" ]; then
    echo "\`storm-cold\`: $STORM_CLIENTS clients created through the admin API, the server restarted, then each"
    echo "asks once (wrk stops when all have their answer); \`storm-warm\`: the same clients again for ${DURATION} s."
    echo "Target: zero non-2xx, and storm-cold at least 25 % of storm-warm."
  elif [ -n "$QUOTA" ]; then
    echo "\`warm-quota\`: the clients of \`warm\` with a quota of 100,000,000 tokens an hour each: counted in memory,"
    echo "added to the shared counters every 50 ms. Target: within noise of \`warm\`."
  elif [ -n "$DPOP" ]; then
    echo "\`dpop-*\`: the warm clients of \`warm\`, every request with a fresh DPoP proof (EdDSA or ES256 key):"
    echo "the token is DPoP-bound (\`cnf.jkt\`). Target: at least 60 % of \`warm\`."
  elif [ -n "$ASSERTIONS" ]; then
    echo "\`pkjwt-*\`: private_key_jwt, 8 clients, every request a fresh assertion (a new jti, spent in"
    echo "the database); \`federated\`: 8 Kubernetes-shaped platform tokens from a trusted issuer, repeated."
  else
    echo "\`attacker\` is the load of wrong secrets that ran during \`attack\`; its non-2xx answers are"
    echo "the 401s (and 503s when the argon2 queue was full) it is meant to get."
  fi
} > "$REPORT"
cat "$REPORT"
