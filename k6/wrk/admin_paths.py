#!/usr/bin/env python3
"""The set-up of a read workload for wrk (run.sh --wrk), as lib.js does it for k6.

    python3 k6/wrk/admin_paths.py W1|W2|W2c|W5 BASE_URL ADMIN_EMAIL PASSWORD PATHS_FILE

Logs in as the admin (POST /auth/login), prints the access token, and writes
to PATHS_FILE, one a line, the paths that wrk then requests at random:

- W1: GET /users/<id> for the ids of ID_PAGES (environment, default 10) pages
  of 100 users at evenly spaced pages of the listing (GET /users?per_page=100),
  so that the random reads do not all hit the newest rows;
- W2: GET /users?per_page=20&page=<n> for every page of the listing, as
  w2_list_offset.js picks them;
- W2c: GET /users?per_page=20&cursor=<c> for the cursors met walking the
  listing by next_cursor, as w2c_list_cursor.js walks it, for at most
  CURSOR_PAGES (environment, default 500) pages (keyset pages cost the same
  at any depth);
- W5: PATCH /users/<id> of their own record by W5_USERS (environment,
  default 16) seeded users (user000001@seed.test, ..., logged in with
  PASSWORD), as w5_patch_self.js does: each line is "<path> <token>", and
  roster.lua sends a merge patch of `name` with that user's token.

Exits non-zero when the login or a listing fails.
"""

import json
import os
import sys
import urllib.parse
import urllib.request


def call(method, url, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.load(response)


def user_paths(list_page):
    """W1: the ids of evenly spaced pages of 100."""
    id_pages = int(os.environ.get("ID_PAGES", "10"))
    first = list_page("per_page=100&page=1")
    last_page = max(1, -(-first["total"] // 100))
    ids = [u["id"] for u in first["items"]]
    pages = min(id_pages, last_page)
    for k in range(1, pages):
        n = 1 + (k * (last_page - 1)) // max(1, pages - 1)
        ids += [u["id"] for u in list_page(f"per_page=100&page={n}")["items"]]
    return [f"/users/{i}" for i in ids]


def offset_paths(list_page):
    """W2: every page of 20."""
    total = list_page("per_page=1")["total"]
    last_page = max(1, -(-total // 20))
    return [f"/users?per_page=20&page={n}" for n in range(1, last_page + 1)]


def cursor_paths(list_page):
    """W2c: the cursors of a walk through the listing."""
    limit = int(os.environ.get("CURSOR_PAGES", "500"))
    paths = ["/users?per_page=20"]
    cursor = list_page("per_page=20")["next_cursor"]
    while cursor and len(paths) < limit:
        query = "per_page=20&cursor=" + urllib.parse.quote(cursor, safe="")
        paths.append(f"/users?{query}")
        cursor = list_page(query)["next_cursor"] if len(paths) < limit else None
    return paths


def main():
    workload, base_url, email, password, paths_file = sys.argv[1:6]
    base_url = base_url.rstrip("/")
    token = call("POST", f"{base_url}/auth/login", body={"email": email, "password": password})[
        "access_token"
    ]

    def list_page(query):
        return call("GET", f"{base_url}/users?{query}", token=token)

    if workload == "W5":
        paths = []
        for i in range(1, int(os.environ.get("W5_USERS", "16")) + 1):
            login = call(
                "POST",
                f"{base_url}/auth/login",
                body={"email": f"user{i:06}@seed.test", "password": password},
            )
            me = call("GET", f"{base_url}/users/me", token=login["access_token"])
            paths.append(f"/users/{me['id']} {login['access_token']}")
    else:
        make = {"W1": user_paths, "W2": offset_paths, "W2c": cursor_paths}[workload]
        paths = make(list_page)
    if workload == "W1" and not paths:
        sys.exit("admin_paths.py: no users to read; seed the database first")
    with open(paths_file, "w") as f:
        f.write("".join(f"{p}\n" for p in paths))
    print(token)


if __name__ == "__main__":
    main()
