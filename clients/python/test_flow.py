"""The account and admin flow of docs/api.md, through the Python client that
openapi-python-client generates from the served /openapi.json.

clients/run.sh generates the package and runs this file with
  ROSTER_URL            base URL of a live server (required)
  ROSTER_CLIENT_PACKAGE import name of the generated package (default roster_client)
  ROSTER_ADMIN_EMAIL, ROSTER_ADMIN_PASSWORD  the admin the server was started with

Every call goes through the generated package; a documented status must come
back as the generated parsed type (`response.parsed`), so a response that the
generator had to drop (unusable content type, a schema it could not read)
fails here with the name of the operation, the status and the expected model.
Only the fixtures fall back to the raw body or the `Location` header, so that
one broken operation does not hide the results of the others.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
import uuid
from types import ModuleType
from typing import Any

import pytest

PKG = os.environ.get("ROSTER_CLIENT_PACKAGE", "roster_client")
ADMIN_EMAIL = os.environ.get("ROSTER_ADMIN_EMAIL", "admin@example.com")
ADMIN_PASSWORD = os.environ.get("ROSTER_ADMIN_PASSWORD", "admin password 123")
PROBLEM_BASE = "https://roster.dev/problems/"
PASSWORD = "correct horse battery staple"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")

generated_client = importlib.import_module(f"{PKG}.client")
generated_models = importlib.import_module(f"{PKG}.models")


# --------------------------------------------------------------------------
# Access to the generated package, failing with a message that names the gap.


def model(name: str) -> type:
    cls = getattr(generated_models, name, None)
    if cls is None:
        pytest.fail(
            f"the generated client has no model {name}: the generator dropped the "
            f"schema (see its warnings)",
            pytrace=False,
        )
    return cls


def operation(tag: str, name: str) -> ModuleType:
    try:
        return importlib.import_module(f"{PKG}.api.{tag}.{name}")
    except ModuleNotFoundError:
        pytest.fail(
            f"the generated client has no operation {tag}.{name}: the generator "
            f"skipped the endpoint (see its warnings)",
            pytrace=False,
        )


def call(tag: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """`sync_detailed` of a generated operation; returns its `Response`."""
    return operation(tag, name).sync_detailed(*args, **kwargs)


def body_of(response: Any) -> Any:
    return json.loads(response.content) if response.content else None


def describe(response: Any) -> str:
    return (
        f"{int(response.status_code)} "
        f"{response.headers.get('content-type')!r} {response.content[:400]!r}"
    )


def expect(response: Any, status: int, type_name: str, what: str) -> Any:
    """Status as documented and the body parsed into the generated model."""
    assert response.status_code == status, f"{what}: expected {status}, got {describe(response)}"
    cls = model(type_name)
    assert response.parsed is not None, (
        f"{what}: the generated client did not parse the {status} response into "
        f"{type_name} (response.parsed is None): the document has no usable {status} "
        f"response for this operation (e.g. a content type the generator does not "
        f"take, or a schema it dropped)"
    )
    assert isinstance(response.parsed, cls), (
        f"{what}: parsed as {type(response.parsed).__name__}, not {type_name}"
    )
    return response.parsed


def expect_list(response: Any, type_name: str, what: str) -> list:
    assert response.status_code == 200, f"{what}: expected 200, got {describe(response)}"
    cls = model(type_name)
    parsed = response.parsed
    assert isinstance(parsed, list), (
        f"{what}: the generated client did not parse the 200 response into "
        f"list[{type_name}] (response.parsed is {parsed!r})"
    )
    for item in parsed:
        assert isinstance(item, cls), f"{what}: item parsed as {type(item).__name__}"
    return parsed


def expect_no_content(response: Any, what: str) -> None:
    assert response.status_code == 204, f"{what}: expected 204, got {describe(response)}"
    assert response.content == b"", f"{what}: 204 with a body {response.content[:200]!r}"


def expect_problem(response: Any, status: int, kind: str, what: str) -> Any:
    """An RFC 9457 problem, parsed into the generated `Problem` model."""
    problem = expect(response, status, "Problem", what)
    content_type = response.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == "application/problem+json", (
        f"{what}: problem served as {content_type!r}"
    )
    assert problem.status == status, f"{what}: problem.status {problem.status}"
    assert problem.type_ == PROBLEM_BASE + kind, f"{what}: problem.type {problem.type_!r}"
    assert problem.title, f"{what}: empty title"
    assert isinstance(problem.detail, str), f"{what}: detail {problem.detail!r}"
    assert problem.request_id == response.headers.get("x-request-id"), (
        f"{what}: request_id {problem.request_id!r} is not the X-Request-Id header"
    )
    return problem


def is_utc(value: Any) -> bool:
    return isinstance(value, dt.datetime) and value.utcoffset() == dt.timedelta(0)


def assert_user(user: Any, *, email: str, name: str | None, role: str, what: str) -> None:
    assert isinstance(user.id, uuid.UUID), f"{what}: id {user.id!r}"
    assert user.email == email, f"{what}: email {user.email!r}"
    assert user.name == name, f"{what}: name {user.name!r}"
    assert user.role == role, f"{what}: role {user.role!r}"
    assert isinstance(user.role, model("RoleName")), f"{what}: role not a RoleName"
    assert is_utc(user.created_at), f"{what}: created_at {user.created_at!r}"
    assert is_utc(user.updated_at), f"{what}: updated_at {user.updated_at!r}"


# --------------------------------------------------------------------------
# Fixtures: the clients and the accounts the tests share.


@pytest.fixture(scope="module")
def base_url() -> str:
    url = os.environ.get("ROSTER_URL")
    if not url:
        pytest.fail("ROSTER_URL is not set", pytrace=False)
    return url.rstrip("/")


@pytest.fixture(scope="module")
def tag() -> str:
    """A marker in every email this run creates, so list filters find them."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def anon(base_url: str) -> Any:
    return generated_client.Client(base_url=base_url, raise_on_unexpected_status=False)


def authed(base_url: str, token: str) -> Any:
    return generated_client.AuthenticatedClient(
        base_url=base_url, token=token, raise_on_unexpected_status=False
    )


def login(anon: Any, email: str, password: str) -> Any:
    return call("auth", "login", client=anon, body=model("LoginRequest")(email=email, password=password))


def tokens(response: Any, what: str) -> tuple[str, str]:
    """(access, refresh) from a login or refresh, parsed or not (for fixtures)."""
    assert response.status_code == 200, f"{what}: {describe(response)}"
    if response.parsed is not None and hasattr(response.parsed, "access_token"):
        return response.parsed.access_token, response.parsed.refresh_token
    raw = body_of(response)
    return raw["access_token"], raw["refresh_token"]


def register(anon: Any, email: str, name: str | None = None) -> Any:
    kwargs: dict[str, Any] = {"email": email, "password": PASSWORD}
    if name is not None:
        kwargs["name"] = name
    return call("auth", "register_user", client=anon, body=model("RegisterRequest")(**kwargs))


def created_id(response: Any, what: str) -> uuid.UUID:
    """The new account's id from `Location` (works even when the body is unparsed)."""
    assert response.status_code == 201, f"{what}: {describe(response)}"
    location = response.headers.get("location", "")
    assert location.startswith("/users/"), f"{what}: Location {location!r}"
    return uuid.UUID(location.removeprefix("/users/"))


@pytest.fixture(scope="module")
def ann_email(tag: str) -> str:
    return f"{tag}-ann@example.com"


@pytest.fixture(scope="module")
def ann_registration(anon: Any, ann_email: str) -> Any:
    # Mixed case in, lower case stored.
    return register(anon, ann_email.replace("ann@example", "Ann@Example"), name="Ann")


@pytest.fixture(scope="module")
def ann_id(ann_registration: Any) -> uuid.UUID:
    return created_id(ann_registration, "register ann")


@pytest.fixture(scope="module")
def ann_login(anon: Any, ann_id: uuid.UUID, ann_email: str) -> Any:
    return login(anon, ann_email, PASSWORD)


@pytest.fixture(scope="module")
def ann(base_url: str, ann_login: Any) -> Any:
    return authed(base_url, tokens(ann_login, "login ann")[0])


@pytest.fixture(scope="module")
def admin(base_url: str, anon: Any) -> Any:
    return authed(base_url, tokens(login(anon, ADMIN_EMAIL, ADMIN_PASSWORD), "admin login")[0])


@pytest.fixture(scope="module")
def admin_id(admin: Any) -> uuid.UUID:
    me = call("users", "get_current_user", client=admin)
    assert me.status_code == 200, f"getCurrentUser (admin): {describe(me)}"
    return uuid.UUID(body_of(me)["id"])


# (email suffix, name, role) of the users the admin creates.
CREATED = [
    ("u0", "Zoe Zed", "user"),
    ("u1", None, "user"),
    ("u2", "Bea", "admin"),
    ("u3", None, "user"),
    ("u4", "Cy", None),  # role omitted: user
]


@pytest.fixture(scope="module")
def created_users(admin: Any, tag: str) -> list[tuple[Any, str, str | None, str]]:
    """(response, email, name, role) for each user the admin creates."""
    out = []
    for suffix, name, role in CREATED:
        email = f"{tag}-{suffix}@example.com"
        kwargs: dict[str, Any] = {"email": email, "password": PASSWORD}
        if name is not None:
            kwargs["name"] = name
        if role is not None:
            kwargs["role"] = model("RoleName")(role)
        response = call("users", "create_user", client=admin, body=model("CreateUserRequest")(**kwargs))
        out.append((response, email, name, role or "user"))
    return out


@pytest.fixture(scope="module")
def created_ids(created_users: list) -> list[uuid.UUID]:
    return [created_id(r, f"create {email}") for r, email, _, _ in created_users]


# --------------------------------------------------------------------------
# Account


def test_register_returns_user(ann_registration: Any, ann_email: str) -> None:
    user = expect(ann_registration, 201, "User", "registerUser")
    assert_user(user, email=ann_email, name="Ann", role="user", what="registerUser")
    assert ann_registration.headers.get("location") == f"/users/{user.id}"
    raw = body_of(ann_registration)
    assert TIMESTAMP.fullmatch(raw["created_at"]), f"created_at {raw['created_at']!r}"
    assert not {"password", "password_hash", "hash"} & set(raw), f"secret in {sorted(raw)}"


def test_register_problems(anon: Any, ann_id: uuid.UUID, ann_email: str) -> None:
    bad = register(anon, "not-an-email")
    problem = expect_problem(bad, 422, "validation", "registerUser with a bad email")
    assert problem.errors, "validation problem without errors"
    error = problem.errors[0]
    assert isinstance(error, model("FieldError"))
    assert error.field == "email"
    assert error.pointer == "#/email"
    assert error.message

    taken = register(anon, ann_email.upper())
    expect_problem(taken, 409, "conflict", "registerUser with a taken email (other case)")


def test_login_returns_token_pair(ann_login: Any) -> None:
    pair = expect(ann_login, 200, "TokenPair", "login")
    assert pair.token_type == "Bearer"
    assert pair.expires_in == 900
    assert pair.access_token.count(".") == 2, "access token is not a JWT"
    assert len(pair.refresh_token) >= 43, "refresh token shorter than 256 bits"


def test_login_with_a_wrong_password_is_401(anon: Any, ann_id: uuid.UUID, ann_email: str) -> None:
    response = login(anon, ann_email, "not the password at all")
    expect_problem(response, 401, "unauthorized", "login with a wrong password")
    assert response.headers.get("www-authenticate", "").startswith("Bearer")
    unknown = login(anon, "nobody-" + ann_email, PASSWORD)
    expect_problem(unknown, 401, "unauthorized", "login with an unknown email")


def test_me(ann: Any, ann_id: uuid.UUID, ann_email: str) -> None:
    user = expect(call("users", "get_current_user", client=ann), 200, "User", "getCurrentUser")
    assert user.id == ann_id
    assert_user(user, email=ann_email, name="Ann", role="user", what="getCurrentUser")


def test_me_with_a_bad_token_is_401(base_url: str) -> None:
    response = call("users", "get_current_user", client=authed(base_url, "not-a-jwt"))
    expect_problem(response, 401, "unauthorized", "getCurrentUser with a bad token")


def test_sessions(ann: Any) -> None:
    sessions = expect_list(call("auth", "list_sessions", client=ann), "Session", "listSessions")
    assert len(sessions) == 1, f"{len(sessions)} sessions"
    (session,) = sessions
    assert session.current is True
    assert isinstance(session.id, uuid.UUID)
    assert is_utc(session.created_at)
    assert is_utc(session.last_used_at), "last_used_at is set at login"
    assert is_utc(session.expires_at) and session.expires_at > session.created_at
    assert session.user_agent is None or isinstance(session.user_agent, str)
    assert session.ip is None or isinstance(session.ip, str)


def test_nullable_fields_parse_null(ann: Any, ann_registration: Any) -> None:
    """`Session.user_agent`, `User.name` and `UserPage.next_cursor` may be null
    ("a field that can be null in a response is declared nullable"): the
    generated models must take a null there, even when this run's server
    happens to send a value."""
    listed = call("auth", "list_sessions", client=ann)
    assert listed.status_code == 200, describe(listed)
    raw_session = body_of(listed)[0]
    failures = []
    for type_name, raw, field in [
        ("Session", raw_session, "user_agent"),
        ("User", body_of(ann_registration), "name"),
        ("UserPage", {"items": [], "page": 1, "per_page": 20, "total": 0, "next_cursor": "x"}, "next_cursor"),
    ]:
        cls = getattr(generated_models, type_name, None)
        if cls is None:
            failures.append(f"no generated model {type_name} (schema dropped)")
            continue
        # The generated attribute type says what the document declared.
        declared = cls.__annotations__.get(field)
        declared = declared if isinstance(declared, str) else repr(declared)
        if not re.search(r"\bNone\b", declared):
            failures.append(f"{type_name}.{field} is typed {declared!r}: not nullable")
        if "Unset" in declared:
            failures.append(f"{type_name}.{field} is typed {declared!r}: optional, but it is always sent")
        try:
            parsed = cls.from_dict({**raw, field: None})
        except Exception as e:  # noqa: BLE001 - the point is that it must not raise
            failures.append(f"{type_name}.from_dict with {field}=null raised {type(e).__name__}: {e}")
            continue
        if getattr(parsed, field) is not None:
            failures.append(f"{type_name}.{field}=null parsed as {getattr(parsed, field)!r}")
    assert not failures, "; ".join(failures)


def test_end_one_session(anon: Any, base_url: str, tag: str) -> None:
    email = f"{tag}-dee@example.com"
    created_id(register(anon, email), "register dee")
    first = authed(base_url, tokens(login(anon, email, PASSWORD), "login dee")[0])
    second = authed(base_url, tokens(login(anon, email, PASSWORD), "login dee again")[0])
    sessions = expect_list(call("auth", "list_sessions", client=first), "Session", "listSessions")
    assert len(sessions) == 2 and sum(s.current for s in sessions) == 1
    other = next(s for s in sessions if not s.current)
    expect_no_content(call("auth", "end_session", other.id, client=first), "endSession")
    expect_problem(
        call("auth", "end_session", other.id, client=first), 404, "not-found", "endSession again"
    )
    expect_problem(
        call("users", "get_current_user", client=second), 401, "unauthorized",
        "getCurrentUser with the ended session's token",
    )


def test_password_refresh_logout(anon: Any, base_url: str, tag: str) -> None:
    email = f"{tag}-bob@example.com"
    created_id(register(anon, email, name="Bob"), "register bob")
    pair = expect(login(anon, email, PASSWORD), 200, "TokenPair", "login bob")
    other_access, _ = tokens(login(anon, email, PASSWORD), "second login bob")
    bob = authed(base_url, pair.access_token)

    new_password = "a brand new passphrase"
    changed = call(
        "auth", "change_password", client=bob,
        body=model("ChangePasswordRequest")(current_password=PASSWORD, new_password=new_password),
    )
    expect_no_content(changed, "changePassword")
    expect_problem(
        call("users", "get_current_user", client=authed(base_url, other_access)), 401,
        "unauthorized", "getCurrentUser from another session after a password change",
    )
    expect_problem(login(anon, email, PASSWORD), 401, "unauthorized", "login with the old password")
    expect(login(anon, email, new_password), 200, "TokenPair", "login with the new password")
    own = call("users", "get_current_user", client=bob)
    assert own.status_code == 200, f"getCurrentUser, own session, after a password change: {describe(own)}"

    refresh_request = model("RefreshRequest")
    refreshed = call("auth", "refresh_tokens", client=anon, body=refresh_request(refresh_token=pair.refresh_token))
    new_pair = expect(refreshed, 200, "TokenPair", "refreshTokens")
    assert new_pair.refresh_token != pair.refresh_token
    assert new_pair.access_token != pair.access_token
    reused = call("auth", "refresh_tokens", client=anon, body=refresh_request(refresh_token=pair.refresh_token))
    expect_problem(reused, 401, "unauthorized", "refreshTokens with the used refresh token")

    bob = authed(base_url, new_pair.access_token)
    fresh = call("users", "get_current_user", client=bob)
    assert fresh.status_code == 200, f"getCurrentUser after refresh: {describe(fresh)}"
    out = call(
        "auth", "logout", client=bob, body=model("LogoutRequest")(refresh_token=new_pair.refresh_token)
    )
    expect_no_content(out, "logout")
    expect_problem(
        call("users", "get_current_user", client=bob), 401, "unauthorized",
        "getCurrentUser after logout",
    )
    after = call("auth", "refresh_tokens", client=anon, body=refresh_request(refresh_token=new_pair.refresh_token))
    expect_problem(after, 401, "unauthorized", "refreshTokens after logout")


# --------------------------------------------------------------------------
# Users (admin)


def test_admin_creates_users(created_users: list) -> None:
    for response, email, name, role in created_users:
        user = expect(response, 201, "User", f"createUser {email}")
        assert_user(user, email=email, name=name, role=role, what=f"createUser {email}")
        assert response.headers.get("location") == f"/users/{user.id}"


def test_list_users_by_cursor(admin: Any, tag: str, created_ids: list[uuid.UUID]) -> None:
    expected = set(created_ids)
    seen: list[uuid.UUID] = []
    cursor: Any = None
    pages = 0
    while True:
        pages += 1
        assert pages <= 10, "cursor walk does not end"
        kwargs: dict[str, Any] = {"per_page": 2, "email": f"{tag}-u"}
        if cursor is not None:
            kwargs["cursor"] = cursor
        page = expect(call("users", "list_users", client=admin, **kwargs), 200, "UserPage", f"listUsers page {pages}")
        assert page.per_page == 2
        assert page.total == len(expected), f"total {page.total}"
        assert len(page.items) <= 2
        for item in page.items:
            assert isinstance(item, model("User"))
        seen.extend(item.id for item in page.items)
        if page.next_cursor is None:
            break
        assert isinstance(page.next_cursor, str) and page.next_cursor
        cursor = page.next_cursor
    assert pages == 3, f"{pages} pages for {len(expected)} users at 2 a page"
    assert len(seen) == len(set(seen)), f"a user seen twice: {seen}"
    assert set(seen) == expected


def test_list_every_user_by_cursor(admin: Any, ann_id: uuid.UUID, created_ids: list[uuid.UUID]) -> None:
    seen: list[uuid.UUID] = []
    cursor: Any = None
    total = None
    for pages in range(1, 100):
        kwargs: dict[str, Any] = {"per_page": 3, "sort": model("ListUsersSort")("email")}
        if cursor is not None:
            kwargs["cursor"] = cursor
        page = expect(call("users", "list_users", client=admin, **kwargs), 200, "UserPage", f"listUsers page {pages}")
        total = page.total if total is None else total
        seen.extend(item.id for item in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)), "a user seen twice"
    assert len(seen) == total
    assert {ann_id, *created_ids} <= set(seen)


def test_list_users_filters(admin: Any, tag: str, created_ids: list[uuid.UUID]) -> None:
    admins = expect(
        call("users", "list_users", client=admin, email=tag, role=model("ListUsersRole")("admin")),
        200, "UserPage", "listUsers role=admin",
    )
    assert [u.email for u in admins.items] == [f"{tag}-u2@example.com"]
    assert admins.next_cursor is None
    named = expect(
        call("users", "list_users", client=admin, q=f"{tag}-u", sort=model("ListUsersSort")("name")),
        200, "UserPage", "listUsers sort=name",
    )
    assert [u.name for u in named.items] == ["Bea", "Cy", "Zoe Zed", None, None]


def test_non_admin_cannot_list_users(ann: Any) -> None:
    expect_problem(call("users", "list_users", client=ann), 403, "forbidden", "listUsers as a user")


def test_get_user(admin: Any, ann: Any, ann_id: uuid.UUID, ann_email: str, admin_id: uuid.UUID) -> None:
    expect_problem(
        call("users", "get_user", admin_id, client=ann), 404, "not-found",
        "getUser of another user as a user",
    )
    expect_problem(
        call("users", "get_user", uuid.UUID("01936a4e-0c1d-7000-8000-00000000dead"), client=admin),
        404, "not-found", "getUser of an unknown id",
    )
    response = call("users", "get_user", ann_id, client=admin)
    assert response.status_code == 200, describe(response)
    etag = response.headers.get("etag")
    assert etag, "getUser without ETag"
    cached = call("users", "get_user", ann_id, client=admin, if_none_match=etag)
    assert cached.status_code == 304, describe(cached)

    user = expect(response, 200, "User", "getUser")
    assert user.id == ann_id
    assert_user(user, email=ann_email, name=user.name, role="user", what="getUser")
    expect(call("users", "get_user", ann_id, client=ann), 200, "User", "getUser of oneself")


def test_patch_user(admin: Any, ann: Any, ann_id: uuid.UUID, admin_id: uuid.UUID) -> None:
    patch = model("PatchUserRequest")
    expect_problem(
        call("users", "update_user", ann_id, client=ann, body=patch(role=model("RoleName")("admin"))),
        403, "forbidden", "updateUser role as a user",
    )
    expect_problem(
        call("users", "update_user", admin_id, client=ann, body=patch(name="x")),
        404, "not-found", "updateUser of another user as a user",
    )

    before = expect(call("users", "get_user", ann_id, client=admin), 200, "User", "getUser")
    renamed = expect(
        call("users", "update_user", ann_id, client=admin, body=patch(name="Ann Admin-Renamed")),
        200, "User", "updateUser name (admin)",
    )
    assert renamed.id == ann_id
    assert renamed.name == "Ann Admin-Renamed"
    assert renamed.email == before.email and renamed.role == before.role
    assert renamed.updated_at >= before.updated_at

    cleared = expect(
        call("users", "update_user", ann_id, client=admin, body=patch(name=None)),
        200, "User", "updateUser name=null (admin)",
    )
    assert cleared.name is None

    own = expect(
        call("users", "update_user", ann_id, client=ann, body=patch(name="Ann Lee")),
        200, "User", "updateUser of oneself",
    )
    assert own.name == "Ann Lee" and own.role == "user"


def test_delete_user(admin: Any, anon: Any, tag: str) -> None:
    victim = created_id(register(anon, f"{tag}-eve@example.com"), "register eve")
    expect_no_content(call("users", "delete_user", victim, client=admin), "deleteUser")
    expect_problem(call("users", "get_user", victim, client=admin), 404, "not-found", "getUser after delete")
    expect_problem(call("users", "delete_user", victim, client=admin), 404, "not-found", "deleteUser again")
