#!/usr/bin/env bash
# Interleaved before/after comparison of release binaries, by wrk: on a
# machine whose speed drifts from minute to minute, only figures from rounds
# that alternate the binaries compare (docs/performance.md).
#
#   k6/ab.sh ROUNDS SECONDS SEEDED_DB BINARY...
#
# ROUNDS     rounds; each starts every binary once, in the order given on
#            odd rounds and reversed on even ones (the later runs of a round
#            were seen to fare differently)
# SECONDS    wrk duration per workload
# SEEDED_DB  a seeded SQLite file, copied for every server (see
#            k6/callgrind.sh for the seeding command); ADMIN_EMAIL and
#            PASSWORD default to the seeder's. With AB_POSTGRES=URL (a
#            server URL ending in a database the role may create databases
#            from), SEEDED_DB is instead the name of a seeded PostgreSQL
#            database there, copied with CREATE DATABASE ... TEMPLATE
# BINARY     release builds of roster; each is named by its directory
#
# AB_WORKLOADS  the workloads, of W0 W1 W2 W2c W5 (default "W0 W1 W2c")
#
# Each server is pinned to core 0 and wrk to core 1 (16 connections), and
# serves the workloads as `run.sh --wrk` requests them, W5 as
# w5_patch_self.js does (k6/wrk/admin_paths.py, k6/wrk/roster.lua). Prints one line per server
# (requests/s and server CPU µs per request, from /proc), then per workload
# the medians and the median of the per-round ratios to the first binary.
set -euo pipefail
[ $# -ge 4 ] || { awk 'NR == 1 { next } /^#/ { print; next } { exit }' "$0"; exit 2; }
ROUNDS=$1 SECONDS_EACH=$2
if [ -n "${AB_POSTGRES:-}" ]; then DB=$3; else DB=$(readlink -f "$3"); fi
WORKLOADS=${AB_WORKLOADS:-W0 W1 W2c}
shift 3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null 2>&1 || { echo "ab.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
names=$(for bin in "$@"; do basename "$(dirname "$(readlink -f "$bin")")"; done)
[ "$(sort -u <<<"$names" | wc -l)" = $# ] ||
    { echo "ab.sh: binaries are named by their directories, which must differ" >&2; exit 2; }
LINES=$(mktemp /tmp/roster-ab.XXXX)
TICK=$(getconf CLK_TCK)
SERVER='' W=''
COPY=''
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$LINES" "$W"
      [ -z "$COPY" ] || psql -q "$AB_POSTGRES" -c "DROP DATABASE IF EXISTS $COPY" >/dev/null 2>&1 || true' EXIT
REVERSED=()
for bin in "$@"; do REVERSED=("$bin" ${REVERSED[@]+"${REVERSED[@]}"}); done
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order=("$@"); else order=("${REVERSED[@]}"); fi
    for bin in "${order[@]}"; do
        bin=$(readlink -f "$bin")
        W=$(mktemp -d /tmp/roster-ab.XXXX)
        if [ -n "${AB_POSTGRES:-}" ]; then
            COPY="ab_$(basename "$W" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')"
            psql -q "$AB_POSTGRES" -c "CREATE DATABASE $COPY TEMPLATE $DB" >/dev/null
            database_url="${AB_POSTGRES%/*}/$COPY"
        else
            cp "$DB" "$W/roster.db"
            database_url="sqlite://$W/roster.db?mode=rwc"
        fi
        PORT=$((20000 + RANDOM % 20000))
        URL=http://127.0.0.1:$PORT
        (cd "$W" && exec env -u OTEL_EXPORTER_OTLP_ENDPOINT DATABASE_URL="$database_url" ROSTER_BIND=127.0.0.1:$PORT \
            ROSTER_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n') \
            ROSTER_LOG_FORMAT=json RUST_LOG=warn taskset -c 0 "$bin" serve >"$W/server.log" 2>&1) &
        SERVER=$!
        for _ in $(seq 100); do curl -sf "$URL/health/live" >/dev/null && break; sleep 0.1; done
        curl -sf "$URL/health/live" >/dev/null ||
            { echo "ab.sh: $bin did not start; see $W/server.log" >&2; cat "$W/server.log" >&2; exit 1; }
        line="$(basename "$(dirname "$bin")") $round"
        for workload in $WORKLOADS; do
            target=$URL paths='' token='' patch=''
            [ "$workload" = W5 ] && patch=1
            if [ "$workload" = W0 ]; then
                target=$URL/health/live
            else
                paths=$W/paths-$workload
                token=$(python3 "$ROOT/k6/wrk/admin_paths.py" "$workload" "$URL" \
                    "${ADMIN_EMAIL:-admin@seed.test}" "${PASSWORD:-seed-password-123}" "$paths")
            fi
            before=$(awk '{print $14 + $15}' "/proc/$SERVER/stat")
            [ -n "$patch" ] && token=''
            out=$(WRK_TOKEN=$token WRK_PATHS=$paths WRK_PATCH=$patch WRK_SUMMARY=$W/$workload.json \
                taskset -c 1 wrk -t1 -c16 -d"${SECONDS_EACH}s" -s "$ROOT/k6/wrk/roster.lua" "$target")
            after=$(awk '{print $14 + $15}' "/proc/$SERVER/stat")
            if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
                echo "ab.sh: $workload against $bin met errors:" >&2
                echo "$out" >&2
                exit 1
            fi
            rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
            n=$(awk '/requests in/ {print $1}' <<<"$out")
            line="$line $workload $rps $(awk -v t=$((after - before)) -v hz="$TICK" -v n="$n" \
                'BEGIN { printf "%.1f", t * 1e6 / hz / n }')"
        done
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
        SERVER=''
        rm -rf "$W"
        if [ -n "${AB_POSTGRES:-}" ]; then
            psql -q "$AB_POSTGRES" -c "DROP DATABASE $COPY" >/dev/null
            COPY=''

        fi
        echo "$line" | tee -a "$LINES"
    done
done
python3 - "$LINES" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(lambda: collections.defaultdict(list))
order = []
for line in open(sys.argv[1]):
    name, _, *rest = line.split()
    if name not in order:
        order.append(name)
    for i in range(0, len(rest), 3):
        runs[rest[i]][name].append((float(rest[i + 1]), float(rest[i + 2])))
print("\n| workload | binary | requests/s (median) | ratio to first (median of rounds) | CPU µs/req (median) |")
print("|---|---|---:|---:|---:|")
for workload, by_binary in runs.items():
    first = by_binary[order[0]]
    for name in order:
        rows = by_binary[name]
        ratio = statistics.median(b[0] / a[0] for a, b in zip(first, rows))
        print(f"| {workload} | {name} | {statistics.median(r[0] for r in rows):,.0f} "
              f"| {ratio:.2f}x | {statistics.median(r[1] for r in rows):.1f} |")
PY
rm -f "$LINES"
