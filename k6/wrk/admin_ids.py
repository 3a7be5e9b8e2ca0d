#!/usr/bin/env python3
"""The W1 set-up for wrk (run.sh --wrk), as lib.js adminAndIds() does it for k6.

    python3 k6/wrk/admin_ids.py BASE_URL ADMIN_EMAIL PASSWORD IDS_FILE

Logs in as the admin (POST /auth/login), prints the access token, and writes
to IDS_FILE, one a line, the ids of ID_PAGES (environment, default 10) pages
of 100 users at evenly spaced pages of the listing (GET /users?per_page=100),
so that the random reads do not all hit the newest rows. Exits non-zero when
the login or a listing fails.
"""

import json
import os
import sys
import urllib.request


def call(method, url, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.load(response)


def main():
    base_url, email, password, ids_file = sys.argv[1:5]
    base_url = base_url.rstrip("/")
    id_pages = int(os.environ.get("ID_PAGES", "10"))
    token = call("POST", f"{base_url}/auth/login", body={"email": email, "password": password})[
        "access_token"
    ]

    def page(n):
        return call("GET", f"{base_url}/users?per_page=100&page={n}", token=token)

    first = page(1)
    last_page = max(1, -(-first["total"] // 100))
    ids = [u["id"] for u in first["items"]]
    pages = min(id_pages, last_page)
    for k in range(1, pages):
        ids += [u["id"] for u in page(1 + (k * (last_page - 1)) // max(1, pages - 1))["items"]]
    if not ids:
        sys.exit("admin_ids.py: no users to read; seed the database first")
    with open(ids_file, "w") as f:
        f.write("".join(f"{i}\n" for i in ids))
    print(token)


if __name__ == "__main__":
    main()
