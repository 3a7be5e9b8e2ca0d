#!/usr/bin/env bash
# Instructions per request of one read, counted by callgrind: repeatable on a
# shared, noisy machine where requests/s are not (docs/performance.md says
# how to read them).
#
#   k6/callgrind.sh BINARY SQLITE_DB PATH [REQUESTS]
#
# BINARY     a release build of roster (line tables help callgrind_annotate)
# SQLITE_DB  a seeded database, copied first (e.g. from k6/run.sh --keep-db,
#            or `DATABASE_URL=sqlite://<file>?mode=rwc target/release/examples/seed
#            --users 10000 --admin-email admin@seed.test --password seed-password-123`)
# PATH       the request, as the seeded admin; CURSOR becomes the cursor of
#            page 3 and UID the id of one user: /health/live,
#            "/users/UID", "/users?cursor=CURSOR", "/users?per_page=20&page=250"
# REQUESTS   measured requests (default 1000), after 200 warm-up requests
#
# Prints the instructions per request and leaves callgrind's output (for
# callgrind_annotate) in the directory it names. ADMIN_EMAIL and PASSWORD
# default to the seeder's.
set -euo pipefail
[ $# -ge 3 ] || { awk 'NR == 1 { next } /^#/ { print; next } { exit }' "$0"; exit 2; }
BIN=$(readlink -f "$1") DB=$2 TARGET=$3 N=${4:-1000}
command -v valgrind >/dev/null 2>&1 || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
W=$(mktemp -d /tmp/roster-callgrind.XXXX)
cp "$DB" "$W/roster.db"
PORT=$((20000 + RANDOM % 20000))
cd "$W"
DATABASE_URL="sqlite://$W/roster.db?mode=rwc" ROSTER_BIND=127.0.0.1:$PORT \
    ROSTER_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n') \
    ROSTER_LOG_FORMAT=json RUST_LOG=warn \
    valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.out" "$BIN" serve >"$W/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/health/live" >/dev/null && break; sleep 0.1; done
python3 - "$PORT" "$TARGET" "$N" "${ADMIN_EMAIL:-admin@seed.test}" "${PASSWORD:-seed-password-123}" <<'PY'
import http.client, json, subprocess, sys
port, target, n, email, password = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
def call(method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()
status, body = call("POST", "/auth/login", json.dumps({"email": email, "password": password}),
                    {"Content-Type": "application/json"})
assert status == 200, (status, body)
auth = {"Authorization": "Bearer " + json.loads(body)["access_token"]}
cursor = json.loads(call("GET", "/users?page=2", headers=auth)[1])["next_cursor"]
uid = json.loads(call("GET", "/users?page=50&per_page=1", headers=auth)[1])["items"][0]["id"]
path = target.replace("CURSOR", cursor).replace("UID", uid)
for _ in range(200):
    call("GET", path, headers=auth)
subprocess.run(["callgrind_control", "--zero"], check=True, capture_output=True)
for _ in range(n):
    status, _ = call("GET", path, headers=auth)
    assert status == 200, status
subprocess.run(["callgrind_control", "--dump"], check=True, capture_output=True)
PY
kill $SERVER; wait $SERVER 2>/dev/null || true
trap - EXIT
python3 - "$W" "$N" <<'PY'
import glob, re, sys
total = 0
for f in glob.glob(sys.argv[1] + "/callgrind.out*"):
    text = open(f).read()
    if "Trigger: dump" in text:
        total += int(re.search(r"^summary:\s*(\d+)", text, re.M).group(1))
print(f"{total / int(sys.argv[2]):,.0f} instructions per request")
PY
echo "callgrind output: $W"
