"""Schemathesis hooks for fuzzing Roster (loaded through SCHEMATHESIS_HOOKS by run.sh).

Two jobs, both about keeping the harness's admin usable for the whole run, so
that no operation has to be excluded:

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

Configuration comes from the environment (run.sh sets it):
ROSTER_FUZZ_URL, ROSTER_FUZZ_ADMIN_EMAIL, ROSTER_FUZZ_ADMIN_PASSWORD.
"""

from __future__ import annotations

import json
import os
import sys
import atexit
import threading
import urllib.error
import urllib.request
import uuid

import schemathesis

BASE_URL = os.environ.get("ROSTER_FUZZ_URL", "http://127.0.0.1:18300").rstrip("/")
ADMIN_EMAIL = os.environ.get("ROSTER_FUZZ_ADMIN_EMAIL", "admin@fuzz.test")
ADMIN_PASSWORD = os.environ.get("ROSTER_FUZZ_ADMIN_PASSWORD", "fuzz-admin-password-1")

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


@schemathesis.hook
def before_call(context, case, kwargs):
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
