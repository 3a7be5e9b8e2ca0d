#!/usr/bin/env python3
"""Times single list requests against a seeded database: offset page 1, a
deep offset page, a cursor page and a `q` search, each sent 25 times in a
row on one keep-alive connection (so this measures the server's latency for
that query, not throughput). Starts the server itself, pinned to core 0.

    python3 k6/probe.py --server target/release/roster --database-url URL \
        [--deep-page 25000] [--admin-email admin@seed.test] [--password seed-password-123]

Prints a Markdown table of the first request's milliseconds, the median and
p90 of all of them, and the page's `total`. The first and the rest differ
for a deep offset page: the server remembers where a page of the default
order starts until the users change, so repeats seek instead of walking.
Use it on a database that `k6/run.sh --keep-db` left behind.
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--deep-page", type=int, default=25000)
    ap.add_argument("--admin-email", default="admin@seed.test")
    ap.add_argument("--password", default="seed-password-123")
    ap.add_argument("--repeat", type=int, default=25)
    args = ap.parse_args()

    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=args.database_url,
        ROSTER_BIND=f"127.0.0.1:{port}",
        ROSTER_JWT_SECRET="probe-" + "x" * 40,
        ROSTER_LOG_FORMAT="json",
        RUST_LOG="warn",
    )
    server = subprocess.Popen(
        ["taskset", "-c", "0", args.server, "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        conn = None
        for _ in range(300):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/health/ready")
                if conn.getresponse().read() and True:
                    break
            except OSError:
                time.sleep(0.1)
        body = json.dumps({"email": args.admin_email, "password": args.password})
        conn.request("POST", "/auth/login", body, {"content-type": "application/json"})
        response = conn.getresponse()
        token = json.loads(response.read())["access_token"]
        headers = {"authorization": f"Bearer {token}"}

        def get(path):
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                sys.exit(f"probe: {path} -> {r.status} {data[:200]!r}")
            return json.loads(data)

        first = get("/users?per_page=20")
        cursor = first.get("next_cursor")
        probes = [
            ("offset page 1", "/users?per_page=20&page=1"),
            (f"offset page {args.deep_page}", f"/users?per_page=20&page={args.deep_page}"),
            ("cursor page 2", f"/users?per_page=20&cursor={cursor}"),
            ("q search (one match)", "/users?per_page=20&q=user000777"),
            ("q search (role=user, unmatched)", "/users?per_page=20&role=user&q=nobody-has-this"),
        ]
        print("| request | first ms | median ms | p90 ms | total |")
        print("|---|---:|---:|---:|---:|")
        for label, path in probes:
            times = []
            page = None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                page = get(path)
                times.append((time.perf_counter() - t0) * 1000)
            first = times[0]
            times.sort()
            p90 = times[int(len(times) * 0.9) - 1]
            median = statistics.median(times)
            print(f"| {label} | {first:.2f} | {median:.2f} | {p90:.2f} | {page['total']} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
