#!/usr/bin/env bash
# Fuzz Roster's HTTP API with schemathesis against its own live /openapi.json.
#
#   fuzz-api/run.sh [sqlite|postgres|both]      (default: both)
#
# For each backend: start `roster` on a fresh database, wait for /health/ready,
# run schemathesis as the bootstrap admin with the five response checks below,
# a fixed seed and a bounded number of examples, then stop the server. Exits
# non-zero if schemathesis reports anything on any backend (or cannot run).
#
# Needs python3 (3.10 or later, with venv or pip) and, for postgres, the psql
# client and a server (CI: point FUZZ_PG_URL at the role .ci/run creates).
# Everything else it installs itself.
#
# Environment (all optional):
#   ROSTER_BIN        roster binary to run. Default: target/debug/roster of this
#                     repo, built with `cargo build --bin roster` if missing. The
#                     binary is copied first, so a rebuild mid-run is harmless.
#   FUZZ_PG_URL       PostgreSQL URL of a role that may CREATE DATABASE; a fresh
#                     database is created from it per run and dropped afterwards.
#                     Default: postgres://postgres@127.0.0.1:5432/postgres
#   FUZZ_SEED         schemathesis seed (default 20261126).
#   FUZZ_MAX_EXAMPLES test cases per operation and phase (default 300).
#   FUZZ_TIMEOUT      seconds after which a backend's run is stopped as failed
#                     (default 480; a normal run takes far less).
#   FUZZ_PORT         port for the server (default 18300).
#   FUZZ_OUT          directory for logs and reports (default: a new temp dir).
#   FUZZ_SCHEMA       an OpenAPI file to test against instead of the served
#                     /openapi.json (to try a document change before making it).
#   FUZZ_VENV         virtualenv holding schemathesis
#                     (default: ~/.cache/roster-fuzz/schemathesis-$VERSION).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"

SCHEMATHESIS_VERSION="4.32.5" # pinned: the checks' behaviour changes between releases
SEED="${FUZZ_SEED:-20261126}"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-300}"
PORT="${FUZZ_PORT:-18300}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-480}"
PG_URL="${FUZZ_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
VENV="${FUZZ_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/roster-fuzz/schemathesis-$SCHEMATHESIS_VERSION}"
OUT="${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/roster-fuzz.XXXXXX")}"
ADMIN_EMAIL="admin@fuzz.test"
ADMIN_PASSWORD="fuzz-admin-password-1"
BASE_URL="http://127.0.0.1:$PORT"

case "${1:-both}" in
    sqlite) BACKENDS=(sqlite) ;;
    postgres) BACKENDS=(postgres) ;;
    both) BACKENDS=(sqlite postgres) ;;
    *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac

log() { printf '\n=== %s\n' "$*"; }
mkdir -p "$OUT"

# --- schemathesis, pinned, in its own virtualenv ------------------------------
# Where python3 has no venv module (Debian without python3-venv), pip installs
# into a plain directory instead, used through PYTHONPATH.
if [ -x "$VENV/bin/python" ]; then
    ST=("$VENV/bin/python" -m schemathesis.cli)
else
    ST=(env "PYTHONPATH=$VENV/site" python3 -m schemathesis.cli)
fi
if ! "${ST[@]}" --version 2>/dev/null | grep -q " version $SCHEMATHESIS_VERSION$"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if python3 -m venv "$VENV" 2>/dev/null; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
        ST=("$VENV/bin/python" -m schemathesis.cli)
    else
        rm -rf "$VENV"
        python3 -m pip install --quiet --disable-pip-version-check --target "$VENV/site" "schemathesis==$SCHEMATHESIS_VERSION"
        ST=(env "PYTHONPATH=$VENV/site" python3 -m schemathesis.cli)
    fi
fi
"${ST[@]}" --version

# --- the roster binary ----------------------------------------------------------
if [ -z "${ROSTER_BIN:-}" ]; then
    ROSTER_BIN="$REPO/target/debug/roster"
    if [ ! -x "$ROSTER_BIN" ]; then
        log "building roster (cargo build --bin roster)"
        (cd "$REPO" && cargo build --quiet --bin roster)
    fi
fi
cp "$ROSTER_BIN" "$OUT/roster"

# --- helpers ----------------------------------------------------------------------
SERVER_PID=""
PG_DB=""

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

drop_db() {
    if [ -n "$PG_DB" ]; then
        psql "$PG_URL" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null || true
        PG_DB=""
    fi
}

cleanup() { stop_server; drop_db; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# HTTP from python, so that curl is not needed.
http_ready() {
    python3 - "$BASE_URL/health/ready" <<'EOF'
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

run_backend() {
    local backend="$1" dir="$OUT/$1" database_url
    rm -rf "$dir"
    mkdir -p "$dir/work"
    case "$backend" in
        sqlite) database_url="sqlite://$dir/roster.db?mode=rwc" ;;
        postgres)
            command -v psql >/dev/null || { echo "psql is needed for the postgres run" >&2; return 1; }
            PG_DB="roster_fuzz_$$_$(date +%s)"
            psql "$PG_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$PG_DB\"" >/dev/null || return 1
            # Same server and credentials as FUZZ_PG_URL, the fresh database instead.
            database_url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$PG_DB")"
            ;;
    esac

    log "$backend: starting roster on $BASE_URL"
    # Cheap bcrypt so that the many logins stay fast; login rate limits lifted
    # because the fuzzer fails logins by the hundred (the limiter itself is
    # covered by the integration tests); the admin is created at start-up.
    # roster=info keeps the request span, so that an error record in the log
    # carries the request_id of the problem document schemathesis reports.
    (
        cd "$dir"
        exec env \
            DATABASE_URL="$database_url" \
            ROSTER_BIND="127.0.0.1:$PORT" \
            ROSTER_BCRYPT_COST=4 \
            ROSTER_ADMIN_EMAIL="$ADMIN_EMAIL" \
            ROSTER_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
            ROSTER_LOGIN_MAX_FAILURES=1000000 \
            ROSTER_LOGIN_MAX_FAILURES_PER_IP=1000000 \
            ROSTER_LOG_FORMAT=json \
            RUST_LOG=warn,roster=info \
            "$OUT/roster"
    ) >"$dir/server.log" 2>&1 &
    SERVER_PID=$!

    for _ in $(seq 1 120); do
        http_ready && break
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "roster exited:" >&2; cat "$dir/server.log" >&2; return 1; }
        sleep 0.5
    done
    http_ready || { echo "roster not ready after 60 s" >&2; cat "$dir/server.log" >&2; return 1; }

    log "$backend: schemathesis (seed $SEED, $MAX_EXAMPLES examples per operation)"
    local rc=0
    local schema=("$BASE_URL/openapi.json")
    [ -z "${FUZZ_SCHEMA:-}" ] || schema=("$(cd "$(dirname "$FUZZ_SCHEMA")" && pwd)/$(basename "$FUZZ_SCHEMA")" --url "$BASE_URL")
    # Run from an empty directory: schemathesis and hypothesis keep state in
    # ./.schemathesis and ./.hypothesis, and a run must depend on the seed only.
    (
        cd "$dir/work"
        # hooks.py: logs in as the admin (re-login + replay on 401, so logout,
        # logout-all and ending sessions stay in the run), keeps the fuzzer
        # from deleting, demoting or renaming that admin, and swaps hostile
        # values (NUL bytes, limit-length strings, 'İ', ...) into a third of
        # the string fields. No operation is excluded.
        export SCHEMATHESIS_HOOKS="$HERE/hooks.py"
        export ROSTER_FUZZ_URL="$BASE_URL"
        export ROSTER_FUZZ_ADMIN_EMAIL="$ADMIN_EMAIL"
        export ROSTER_FUZZ_ADMIN_PASSWORD="$ADMIN_PASSWORD"
        # --config-file          : disables schemathesis' cross-run cache (see the file)
        # --checks               : exactly the five response checks of the reliability issue
        # --seed                 : fixed, so a run is reproducible
        # --max-examples         : bounds each operation in each phase (examples,
        #                          coverage, fuzzing, stateful); about 1 min per backend
        #                          at the default on 2 cores
        # --workers 1            : one worker keeps the request order, and so the
        #                          run, a function of the seed
        # --generation-database  : none, so earlier runs' failures are not replayed
        # --continue-on-failure  : report every failure of an operation, not the first
        # --request-timeout      : a hung request is a finding, not a stuck run
        # No --max-time: with it schemathesis repeats fuzzing until the budget is
        # spent, so the run would no longer be a function of the seed. `timeout`
        # (SIGINT, which schemathesis turns into a clean, failing stop) only
        # guards against a hung run.
        timeout --signal=INT --kill-after=30 "$FUZZ_TIMEOUT" \
        "${ST[@]}" --config-file "$HERE/schemathesis.toml" run "${schema[@]}" \
            --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
            --seed "$SEED" \
            --max-examples "$MAX_EXAMPLES" \
            --workers 1 \
            --generation-database none \
            --continue-on-failure \
            --request-timeout 10 \
            --no-color \
            --report junit,ndjson \
            --report-dir "$dir/report"
    ) 2>&1 | tee "$dir/schemathesis.log" || rc=$? # pipefail: schemathesis' status

    # A 5xx that schemathesis saw is in its own report; panics or errors that
    # only reached the log are worth a look too.
    # (First line of each distinct error; the full records, with backtraces,
    # stay in server.log.)
    python3 - "$dir/server.log" "$backend" <<'EOF'
import collections, json, sys
seen = collections.Counter()
ids = collections.defaultdict(list)
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        record = json.loads(line)
    except ValueError:
        continue
    if record.get("level") == "ERROR":
        key = (record.get("message", ""), str(record.get("error", "")).split("\n")[0])
        seen[key] += 1
        span = record.get("span") or {}
        if len(ids[key]) < 3:
            ids[key].append(f'{span.get("http.request.method", "?")} {span.get("url.path", "?")} {span.get("request_id", "?")}')
if seen:
    print(f"--- {sys.argv[2]}: ERROR records in the server log:")
    for key, count in seen.most_common():
        print(f"  {count:5d} x {key[0]}: {key[1]}")
        for example in ids[key]:
            print(f"          e.g. {example}")
EOF

    stop_server
    drop_db
    return "$rc"
}

status=0
declare -A RESULT
for backend in "${BACKENDS[@]}"; do
    if run_backend "$backend"; then RESULT[$backend]=passed; else RESULT[$backend]=FAILED; status=1; fi
done

log "summary (logs and reports in $OUT)"
for backend in "${BACKENDS[@]}"; do
    echo "$backend: ${RESULT[$backend]}"
done
exit "$status"
