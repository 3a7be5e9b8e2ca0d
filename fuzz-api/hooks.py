"""Schemathesis hooks for fuzzing Roster (loaded through SCHEMATHESIS_HOOKS by run.sh).

Three jobs:

1. Authentication. ``AdminBearer`` logs in as the admin with ``POST /auth/login``
   and puts ``Authorization: Bearer <access_token>`` on every request. The
   fuzzed operations ``logout``, ``logoutAll``, ``endUserSessions`` and
   ``endSession`` legitimately kill that token mid-run; schemathesis then gets a
   401, and because this is a registered auth provider (``retry_on=[401]``) it
   logs in again and replays the request once, so a dead token never shows up as
   a failure and those operations stay in the run.

2. The admin's identity. A login cannot be recovered once the admin's email
   changes, its role drops to ``user`` or it is deleted (all possible as soon
   as the fuzzer has created a second admin, since the last-admin rule then no
   longer protects it). ``before_call`` therefore redirects exactly those
   requests (``DELETE /users/{admin}``, and ``PUT``/``PATCH /users/{admin}``
   whose body would change its email or role) to a stand-in user created for
   the purpose, so the same code paths still run on a real record. Nothing else
   is touched. ``POST /auth/password`` needs the admin's current password,
   which the generator does not know, so it cannot lock the harness out.

3. Hostile values. Random generation practically never produces the inputs
   that reach the service's edge cases: NUL bytes (PostgreSQL rejects them in
   text), strings at and just past the length limits, characters whose
   lower-case form is longer ('İ', U+0130, lower-cases to two characters), LIKE
   wildcards, quotes, RFC 3339 times that leave years 0-9999 once converted to
   UTC. ``before_call`` swaps such a value into about one in three string fields
   of the JSON bodies and query strings listed below. The choice is a hash of
   the case itself, so it is fixed by the seed and identical when schemathesis
   replays a case to shrink or confirm a failure, and the reported curl command
   shows the request as sent. (schemathesis' own fuzz dictionaries were tried
   first: their draws go through hypothesis, which kept picking the same one or
   two entries, so most values were never sent.)

Configuration comes from the environment (run.sh sets it):
ROSTER_FUZZ_URL, ROSTER_FUZZ_ADMIN_EMAIL, ROSTER_FUZZ_ADMIN_PASSWORD.
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import json
import os
import sys
import threading
import urllib.error
import urllib.request
import uuid

import schemathesis

BASE_URL = os.environ.get("ROSTER_FUZZ_URL", "http://127.0.0.1:18300").rstrip("/")
ADMIN_EMAIL = os.environ.get("ROSTER_FUZZ_ADMIN_EMAIL", "admin@fuzz.test")
ADMIN_PASSWORD = os.environ.get("ROSTER_FUZZ_ADMIN_PASSWORD", "fuzz-admin-password-1")

# --- hostile values -------------------------------------------------------------

EMAILS = [
    "a\x00b@fuzz.test",  # NUL inside an otherwise valid address
    "nul@fuzz.test\x00",  # NUL at the end
    "İ" * 127 + "@fuzz.test",  # 137 chars; 264 once lower-cased
    "a" * 244 + "@fuzz.test",  # 254 chars: the longest valid address
    "a" * 245 + "@fuzz.test",  # 255 chars: one over
    "  Mixed.Case@Fuzz.Test  ",  # needs trimming and lower-casing
    "o'brien%_x@fuzz.test",  # quote and LIKE wildcards
    "\u202eevil@fuzz.test",  # right-to-left override
    "😀@fuzz.test",  # astral-plane character
]

STRINGS = [
    "\x00",
    "a\x00b",
    "%",
    "_",
    "'",
    "\\",
    "' OR '1'='1",
    "İ" * 50,  # 50 chars; 100 once lower-cased
    "İ" * 128,  # 128 chars; 256 once lower-cased
    "a" * 100,  # the longest name
    "a" * 101,  # one over the name limit
    "a" * 255,  # one over the email limit
    "p" * 128,  # the longest password
    "p" * 129,  # one over
    "😀" * 8,  # astral-plane characters (8 chars, 32 UTF-8 bytes)
    "\u202e",
    " ",
]

TIMES = [
    "9999-12-31T23:59:59-23:59",  # valid RFC 3339; year 10000 in UTC
    "0000-01-01T00:00:00+23:59",  # valid RFC 3339; year -1 in UTC
    "2026-11-26T10:00:00.123456789Z",  # nanoseconds
    "2026-11-26T10:00:00.123456Z",  # microseconds, the stored precision
    "1970-01-01T00:00:00Z",
]

BODY_FIELDS = {
    "email": EMAILS,
    "name": STRINGS,
    "password": STRINGS,
    "current_password": STRINGS,
    "new_password": STRINGS,
    "refresh_token": STRINGS,
}

QUERY_FIELDS = {
    "q": STRINGS,
    "email": STRINGS,
    "cursor": STRINGS,
    "role": STRINGS,
    "sort": STRINGS,
    "created_after": TIMES + STRINGS,
    "created_before": TIMES + STRINGS,
}

INJECT_ONE_IN = 3


def _digest(*parts: object) -> int:
    text = json.dumps(parts, sort_keys=True, default=repr, ensure_ascii=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


# Values the server made up (tokens), which differ from run to run: left out of
# the hash so that the choice stays a function of the seed.
UNSTABLE_FIELDS = {"refresh_token"}


def _inject(label: str, location: str, container, fields: dict[str, list[str]]) -> None:
    if not isinstance(container, dict):
        return
    original = dict(container)
    stable = {key: value for key, value in original.items() if key not in UNSTABLE_FIELDS}
    for field, values in fields.items():
        if not isinstance(original.get(field), str):
            continue
        pick = _digest(label, location, field, stable)
        if pick % INJECT_ONE_IN == 0:
            container[field] = values[(pick // INJECT_ONE_IN) % len(values)]


# --- admin session and identity -------------------------------------------------------

_lock = threading.Lock()
_state: dict[str, str] = {}
# Requests the guard rerouted, reported on exit.
_redirected = 0


@atexit.register
def _report() -> None:
    if _redirected:
        print(f"hooks.py: redirected {_redirected} request(s) that would have changed the harness admin", file=sys.stderr)


def _request(method: str, path: str, body=None, token: str | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE_URL + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw


def _login() -> str:
    status, body = _request("POST", "/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    if status != 200 or not isinstance(body, dict) or "access_token" not in body:
        raise RuntimeError(f"admin login failed: {status} {body!r}")
    return body["access_token"]


def _ids() -> dict[str, str]:
    """The admin's id and the stand-in's id, looked up once."""
    with _lock:
        if _state:
            return _state
        token = _login()
        status, me = _request("GET", "/users/me", token=token)
        if status != 200:
            raise RuntimeError(f"GET /users/me as the admin failed: {status} {me!r}")
        email = f"stand-in-{uuid.uuid4().hex[:12]}@fuzz.test"
        status, created = _request(
            "POST",
            "/users",
            {"email": email, "password": "stand-in-password-" + uuid.uuid4().hex, "name": "Stand-in"},
            token=token,
        )
        if status != 201:
            raise RuntimeError(f"creating the stand-in user failed: {status} {created!r}")
        _state["admin"] = me["id"]
        _state["stand_in"] = created["id"]
        return _state


@schemathesis.auth(refresh_interval=300, retry_on=[401])
class AdminBearer:
    """Bearer token of the harness admin; re-login + replay on 401."""

    def get(self, case, context):
        return _login()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


def _would_break_admin(method: str, body) -> bool:
    if method == "DELETE":
        return True
    if not isinstance(body, dict):
        # Not an object: the service can only reject it.
        return False
    if method == "PUT":
        # Full replace: `email` is required and `role` is optional (unchanged when absent).
        email = body.get("email")
        same_email = isinstance(email, str) and email.strip().lower() == ADMIN_EMAIL
        return not same_email or body.get("role", "admin") != "admin"
    if method == "PATCH":
        if "email" in body:
            email = body["email"]
            if not (isinstance(email, str) and email.strip().lower() == ADMIN_EMAIL):
                return True
        return "role" in body and body["role"] != "admin"
    return False


def _guard_admin(case) -> None:
    global _redirected
    if case.operation.path != "/users/{id}" or case.method.upper() not in ("DELETE", "PUT", "PATCH"):
        return
    params = case.path_parameters or {}
    target = params.get("id")
    if not isinstance(target, str):
        return
    ids = _ids()
    if target.strip().lower() != ids["admin"].lower():
        return
    if _would_break_admin(case.method.upper(), case.body):
        params["id"] = ids["stand_in"]
        _redirected += 1


# Cases already given their values: a case is sent again after a re-login (see
# AdminBearer), and must then go out unchanged. Strong references, so that an
# id cannot be reused while it is remembered; bounded, since only the last few
# cases can be replayed.
_seen: collections.OrderedDict[int, object] = collections.OrderedDict()


@schemathesis.hook
def before_call(context, case, kwargs):
    with _lock:
        if _seen.get(id(case)) is case:
            return
        _seen[id(case)] = case
        while len(_seen) > 256:
            _seen.popitem(last=False)
    label = case.operation.label
    _inject(label, "body", case.body, BODY_FIELDS)
    _inject(label, "query", case.query, QUERY_FIELDS)
    # Last, so that it sees the body that will be sent.
    _guard_admin(case)
