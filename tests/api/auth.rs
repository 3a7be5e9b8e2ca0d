//! `/auth`: registration, login, tokens, sessions, throttling, bootstrap.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, Tokens, assert_problem, backends, tally};

const USER_FIELDS: [&str; 9] = [
    "id",
    "email",
    "name",
    "role",
    "created_at",
    "updated_at",
    "status",
    "email_verified",
    "last_login_at",
];

fn assert_user_shape(user: &Value) {
    let keys: HashSet<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        USER_FIELDS.into_iter().collect(),
        "only the User fields: {user}"
    );
}

#[tokio::test]
async fn register_returns_201_with_location_and_a_lower_cased_user() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let response = app
            .post_json(
                "/auth/register",
                &json!({"email": "  Ann@Example.IO ", "password": PASSWORD, "name": "Ann"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{backend:?}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let user: Value = response.json().await.unwrap();
        assert_user_shape(&user);
        assert_eq!(location, format!("/users/{}", user["id"].as_str().unwrap()));
        assert_eq!(user["email"], "ann@example.io");
        assert_eq!(user["name"], "Ann");
        assert_eq!(user["role"], "user");
        let created = user["created_at"].as_str().unwrap();
        assert!(
            created.ends_with('Z') && created.len() == "2026-11-26T10:00:00.123456Z".len(),
            "{created}"
        );
    }
}

#[tokio::test]
async fn register_without_a_name_returns_null_name() {
    let app = TestApp::spawn(&backends()[0]).await;
    let user = app.register("noname@x.io").await;
    assert_eq!(user["name"], Value::Null);
}

#[tokio::test]
async fn register_rejects_each_broken_field_rule_with_422() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let long_name = "n".repeat(101);
        let cases = [
            (
                json!({"email": "not-an-email", "password": PASSWORD}),
                "email",
            ),
            (json!({"email": "a@nodot", "password": PASSWORD}), "email"),
            (json!({"email": "a@x.io", "password": "short"}), "password"),
            (
                json!({"email": "a@x.io", "password": "x".repeat(129)}),
                "password",
            ),
            (
                json!({"email": "a@x.io", "password": "Password1"}),
                "password",
            ),
            (
                json!({"email": "a@x.io", "password": PASSWORD, "name": long_name}),
                "name",
            ),
            (
                json!({"email": "a@x.io", "password": PASSWORD, "name": "nul\u{0}byte"}),
                "name",
            ),
            (
                json!({"email": "a@x.io", "password": PASSWORD, "role": "admin"}),
                "role",
            ),
            (json!({"email": 42, "password": PASSWORD}), "email"),
            (json!({"password": PASSWORD}), "email"),
            (json!({"email": "a@x.io", "password": null}), "password"),
        ];
        for (body, field) in cases {
            let response = app.post_json("/auth/register", &body).await;
            let problem =
                assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
            let errors = problem["errors"].as_array().unwrap();
            assert!(
                errors
                    .iter()
                    .any(|e| e["field"] == field && e["pointer"] == format!("#/{field}")),
                "{backend:?} {body}: {problem}"
            );
        }
        // Several broken fields are all reported.
        let response = app
            .post_json(
                "/auth/register",
                &json!({"email": "bad", "password": "short"}),
            )
            .await;
        let problem =
            assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");
        assert_eq!(problem["detail"], "2 fields are invalid");
    }
}

#[tokio::test]
async fn register_answers_garbage_with_400_and_wrong_media_with_415() {
    let app = TestApp::spawn(&backends()[0]).await;
    for body in [
        "{",
        "not json",
        "{\"email\": \"a@x.io\"} trailing",
        "",
        &"[".repeat(10_000),
    ] {
        let response = app
            .request(Method::POST, "/auth/register")
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::BAD_REQUEST, "bad-request").await;
    }
    let response = app
        .request(Method::POST, "/auth/register")
        .header("content-type", "text/plain")
        .body("email=a@x.io")
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    let response = app
        .request(Method::POST, "/auth/register")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    let response = app
        .request(Method::POST, "/auth/register")
        .header("content-type", "application/json")
        .body(b"\"\xff\xfe\"".to_vec())
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "bad-request").await;
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let app = TestApp::spawn_with(&backends()[0], |s| s.max_body_bytes = "100".into()).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(vec![b' '; 80]), Ok(vec![b' '; 80])];
    let response = app
        .request(Method::POST, "/auth/register")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
}

#[tokio::test]
async fn register_returns_409_when_the_email_is_taken_in_any_case() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        app.register("taken@x.io").await;
        let response = app
            .post_json(
                "/auth/register",
                &json!({"email": "TAKEN@x.io", "password": PASSWORD}),
            )
            .await;
        assert_problem(response, StatusCode::CONFLICT, "conflict").await;
    }
}

#[tokio::test]
async fn register_is_403_when_registration_is_disabled() {
    let app = TestApp::spawn_with(&backends()[0], |s| s.allow_registration = "false".into()).await;
    let response = app
        .post_json(
            "/auth/register",
            &json!({"email": "a@x.io", "password": PASSWORD}),
        )
        .await;
    assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_give_exactly_one_201() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let bodies: Vec<Value> = (0..20)
            .map(|i| {
                let email = if i % 2 == 0 { "race@x.io" } else { "RACE@x.io" };
                json!({"email": email, "password": PASSWORD})
            })
            .collect();
        let requests = bodies
            .iter()
            .map(|body| app.post_json("/auth/register", body));
        let statuses: Vec<StatusCode> = futures_util::future::join_all(requests)
            .await
            .into_iter()
            .map(|r| r.status())
            .collect();
        let [created, conflicts] = tally(&statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
        assert_eq!((created, conflicts), (1, 19), "{backend:?}: {statuses:?}");
    }
}

#[tokio::test]
async fn login_returns_a_token_pair_that_authenticates() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let user = app.register("ann@x.io").await;
        let response = app.try_login("ANN@x.io", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        let pair: Value = response.json().await.unwrap();
        assert_eq!(pair["token_type"], "Bearer");
        assert_eq!(pair["expires_in"], 900);
        assert!(
            pair["refresh_token"].as_str().unwrap().len() >= 43,
            "256 bits"
        );
        let me = app.me(pair["access_token"].as_str().unwrap()).await;
        assert_user_shape(&me);
        assert_eq!(me["id"], user["id"]);
    }
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_identical_401() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        app.register("ann@x.io").await;
        let mut bodies = Vec::new();
        for (email, password) in [("nobody@x.io", PASSWORD), ("ann@x.io", "wrong password!")] {
            let response = app.try_login(email, password).await;
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let mut body = assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
            body.as_object_mut().unwrap().remove("request_id");
            bodies.push(body);
        }
        assert_eq!(bodies[0], bodies[1], "{backend:?}");
    }
}

#[tokio::test]
async fn login_is_rate_limited_per_account_and_a_success_resets_it() {
    for backend in backends() {
        let app = TestApp::spawn_with(&backend, |s| s.login_max_failures = "3".into()).await;
        app.register("ann@x.io").await;
        // Two failures, then a success: the counter resets.
        for _ in 0..2 {
            assert_eq!(
                app.try_login("ann@x.io", "wrong password!").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        app.login("ann@x.io", PASSWORD).await;
        for _ in 0..3 {
            assert_eq!(
                app.try_login("ann@x.io", "wrong password!").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        // Limited now, even with the right password.
        let response = app.try_login("ann@x.io", PASSWORD).await;
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;
        // Unknown emails are counted too.
        for _ in 0..3 {
            app.try_login("ghost@x.io", PASSWORD).await;
        }
        assert_eq!(
            app.try_login("ghost@x.io", PASSWORD).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

#[tokio::test]
async fn login_is_rate_limited_per_client_address() {
    let app =
        TestApp::spawn_with(&backends()[0], |s| s.login_max_failures_per_ip = "3".into()).await;
    app.register("ann@x.io").await;
    for i in 0..3 {
        app.try_login(&format!("other{i}@x.io"), PASSWORD).await;
    }
    let response = app.try_login("ann@x.io", PASSWORD).await;
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;
}

#[tokio::test]
async fn long_non_ascii_passwords_are_not_truncated() {
    let app = TestApp::spawn(&backends()[0]).await;
    let base = "ü".repeat(99); // 198 bytes: far past bcrypt's 72
    let (first, second) = (format!("{base}a"), format!("{base}b"));
    assert_eq!(first.chars().count(), 100);
    let response = app
        .post_json(
            "/auth/register",
            &json!({"email": "long@x.io", "password": first}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        app.try_login("long@x.io", &second).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.login("long@x.io", &first).await;
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_stops_working() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (_, tokens) = app.signed_up("ann@x.io").await;
        let response = app
            .post_json("/auth/refresh", &json!({"refresh_token": tokens.refresh}))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        let pair: Value = response.json().await.unwrap();
        let next = pair["refresh_token"].as_str().unwrap();
        assert_ne!(next, tokens.refresh);
        assert_eq!(
            app.get_auth("/users/me", pair["access_token"].as_str().unwrap())
                .await
                .status(),
            StatusCode::OK
        );

        // Within 10 s of its rotation: 401, and the session survives.
        let again = app
            .post_json("/auth/refresh", &json!({"refresh_token": tokens.refresh}))
            .await;
        assert_problem(again, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let response = app
            .post_json("/auth/refresh", &json!({"refresh_token": next}))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "two tabs must not log the user out"
        );
    }
}

#[tokio::test]
async fn reusing_an_old_refresh_token_revokes_the_session() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (_, tokens) = app.signed_up("ann@x.io").await;
        let pair: Value = app
            .post_json("/auth/refresh", &json!({"refresh_token": tokens.refresh}))
            .await
            .json()
            .await
            .unwrap();
        // Pretend the rotation happened a minute ago.
        let past = (chrono::Utc::now() - chrono::TimeDelta::seconds(60))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
        app.sql(&format!(
            "UPDATE refresh_tokens SET rotated_at = '{past}' WHERE rotated_at IS NOT NULL"
        ))
        .await;
        let reuse = app
            .post_json("/auth/refresh", &json!({"refresh_token": tokens.refresh}))
            .await;
        assert_problem(reuse, StatusCode::UNAUTHORIZED, "unauthorized").await;
        // The whole session is gone: the newest refresh token and its access token too.
        let newest = app
            .post_json(
                "/auth/refresh",
                &json!({"refresh_token": pair["refresh_token"]}),
            )
            .await;
        assert_eq!(newest.status(), StatusCode::UNAUTHORIZED, "{backend:?}");
        let me = app
            .get_auth("/users/me", pair["access_token"].as_str().unwrap())
            .await;
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_yield_exactly_one_pair() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (_, tokens) = app.signed_up("ann@x.io").await;
        let body = json!({"refresh_token": tokens.refresh});
        let requests = (0..20).map(|_| app.post_json("/auth/refresh", &body));
        let statuses: Vec<StatusCode> = futures_util::future::join_all(requests)
            .await
            .into_iter()
            .map(|r| r.status())
            .collect();
        let [ok, unauthorized] = tally(&statuses, [StatusCode::OK, StatusCode::UNAUTHORIZED]);
        assert_eq!((ok, unauthorized), (1, 19), "{backend:?}: {statuses:?}");
    }
}

#[tokio::test]
async fn refresh_rejects_unknown_tokens_and_bad_bodies() {
    let app = TestApp::spawn(&backends()[0]).await;
    let response = app
        .post_json("/auth/refresh", &json!({"refresh_token": "nope"}))
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = app.post_json("/auth/refresh", &json!({})).await;
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
}

async fn assert_revoked(app: &TestApp, tokens: &Tokens) {
    let me = app.get_auth("/users/me", &tokens.access).await;
    assert_problem(me, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let refresh = app
        .post_json("/auth/refresh", &json!({"refresh_token": tokens.refresh}))
        .await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_ends_the_session_at_once_with_or_without_a_body() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (_, first) = app.signed_up("ann@x.io").await;
        let second = app.login("ann@x.io", PASSWORD).await;

        let response = app
            .send_auth(Method::POST, "/auth/logout", &first.access)
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{backend:?}");
        assert_revoked(&app, &first).await;

        // The other session is untouched, and logs out with a body.
        assert_eq!(
            app.get_auth("/users/me", &second.access).await.status(),
            StatusCode::OK
        );
        let response = app
            .send_json_auth(
                Method::POST,
                "/auth/logout",
                &second.access,
                &json!({"refresh_token": second.refresh}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_revoked(&app, &second).await;
    }
}

#[tokio::test]
async fn logout_all_ends_every_session() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (_, first) = app.signed_up("ann@x.io").await;
        let second = app.login("ann@x.io", PASSWORD).await;
        let (_, other_user) = app.signed_up("bob@x.io").await;
        let response = app
            .send_auth(Method::POST, "/auth/logout-all", &first.access)
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_revoked(&app, &first).await;
        assert_revoked(&app, &second).await;
        assert_eq!(
            app.get_auth("/users/me", &other_user.access).await.status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_wrong_current_password_counts_against_the_accounts_login_budget() {
    for backend in backends() {
        let app = TestApp::spawn_with(&backend, |s| s.login_max_failures = "3".into()).await;
        let (ann, tokens) = app.signed_up("ann@x.io").await;
        let ann_id = ann["id"].as_str().unwrap();
        // Two wrong guesses through the password change, one through an
        // email change: the account's third failure.
        for _ in 0..2 {
            let wrong = app
                .send_json_auth(
                    Method::POST,
                    "/auth/password",
                    &tokens.access,
                    &json!({"current_password": "not it at all", "new_password": "a brand new one"}),
                )
                .await;
            assert_problem(wrong, StatusCode::FORBIDDEN, "forbidden").await;
        }
        let wrong = app
            .send_json_auth(
                Method::PATCH,
                &format!("/users/{ann_id}"),
                &tokens.access,
                &json!({"email": "ann2@x.io", "current_password": "still not it"}),
            )
            .await;
        assert_problem(wrong, StatusCode::FORBIDDEN, "forbidden").await;
        // Over the budget: the right password is refused everywhere.
        let login = app.try_login("ann@x.io", PASSWORD).await;
        assert_problem(login, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;
        let change = app
            .send_json_auth(
                Method::POST,
                "/auth/password",
                &tokens.access,
                &json!({"current_password": PASSWORD, "new_password": "a brand new one"}),
            )
            .await;
        assert_problem(change, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;
    }
}

#[tokio::test]
async fn password_change_checks_the_current_one_and_ends_other_sessions() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (_, current) = app.signed_up("ann@x.io").await;
        let other = app.login("ann@x.io", PASSWORD).await;
        let new_password = "a brand new passphrase";

        let wrong = app
            .send_json_auth(
                Method::POST,
                "/auth/password",
                &current.access,
                &json!({"current_password": "not it at all", "new_password": new_password}),
            )
            .await;
        assert_problem(wrong, StatusCode::FORBIDDEN, "forbidden").await;
        let common = app
            .send_json_auth(
                Method::POST,
                "/auth/password",
                &current.access,
                &json!({"current_password": PASSWORD, "new_password": "iloveyou"}),
            )
            .await;
        assert_problem(common, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;

        let response = app
            .send_json_auth(
                Method::POST,
                "/auth/password",
                &current.access,
                &json!({"current_password": PASSWORD, "new_password": new_password}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{backend:?}");
        assert_revoked(&app, &other).await;
        assert_eq!(
            app.get_auth("/users/me", &current.access).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            app.try_login("ann@x.io", PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
        app.login("ann@x.io", new_password).await;
    }
}

#[tokio::test]
async fn sessions_are_listed_and_can_be_ended_one_by_one() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (_, first) = app.signed_up("ann@x.io").await;
        let second = app
            .request(Method::POST, "/auth/login")
            .header("user-agent", "second-device/1.0")
            .json(&json!({"email": "ann@x.io", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let second_access = second["access_token"].as_str().unwrap();

        let list: Vec<Value> = app
            .get_auth("/auth/sessions", &first.access)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list.len(), 2, "{backend:?}: {list:?}");
        let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1);
        let other = list.iter().find(|s| s["current"] == false).unwrap();
        assert_eq!(other["user_agent"], "second-device/1.0");
        assert_eq!(other["ip"], "127.0.0.1");
        for key in [
            "id",
            "created_at",
            "last_used_at",
            "expires_at",
            "user_agent",
            "ip",
            "current",
        ] {
            assert!(other.get(key).is_some(), "{key}");
        }

        let path = format!("/auth/sessions/{}", other["id"].as_str().unwrap());
        assert_eq!(
            app.send_auth(Method::DELETE, &path, &first.access)
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            app.get_auth("/users/me", second_access).await.status(),
            StatusCode::UNAUTHORIZED
        );
        // Already ended: 404. Another user's session: 404. Malformed id: 404.
        assert_problem(
            app.send_auth(Method::DELETE, &path, &first.access).await,
            StatusCode::NOT_FOUND,
            "not-found",
        )
        .await;
        let (_, bob) = app.signed_up("bob@x.io").await;
        let bobs: Vec<Value> = app
            .get_auth("/auth/sessions", &bob.access)
            .await
            .json()
            .await
            .unwrap();
        let bob_path = format!("/auth/sessions/{}", bobs[0]["id"].as_str().unwrap());
        assert_eq!(
            app.send_auth(Method::DELETE, &bob_path, &first.access)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.get_auth("/users/me", &bob.access).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            app.send_auth(Method::DELETE, "/auth/sessions/not-a-uuid", &first.access)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn only_admins_end_another_users_sessions() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (ann, ann_tokens) = app.signed_up("ann@x.io").await;
        let (_, bob_tokens) = app.signed_up("bob@x.io").await;
        let path = format!("/users/{}/sessions", ann["id"].as_str().unwrap());
        let response = app
            .send_auth(Method::DELETE, &path, &bob_tokens.access)
            .await;
        assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;

        let admin = app.login_admin().await;
        assert_eq!(
            app.send_auth(Method::DELETE, &path, &admin.access)
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        assert_revoked(&app, &ann_tokens).await;
    }
}

#[tokio::test]
async fn authorization_uses_the_current_role_and_deletion_revokes_at_once() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (ann, ann_tokens) = app.signed_up("ann@x.io").await;
        let (bob, bob_tokens) = app.signed_up("bob@x.io").await;
        let path = format!("/users/{}/sessions", bob["id"].as_str().unwrap());
        let id = ann["id"].as_str().unwrap();

        app.sql("UPDATE users SET role = 'admin' WHERE email = 'ann@x.io'")
            .await;
        let me = app.me(&ann_tokens.access).await;
        assert_eq!(
            me["role"], "admin",
            "{backend:?}: the token's role claim is not used"
        );
        assert_eq!(
            app.send_auth(Method::DELETE, &path, &ann_tokens.access)
                .await
                .status(),
            StatusCode::NO_CONTENT
        );

        app.sql("UPDATE users SET role = 'user' WHERE email = 'ann@x.io'")
            .await;
        assert_eq!(
            app.send_auth(Method::DELETE, &path, &ann_tokens.access)
                .await
                .status(),
            StatusCode::FORBIDDEN
        );

        app.sql("DELETE FROM users WHERE email = 'ann@x.io'").await;
        assert_eq!(
            app.get_auth("/users/me", &ann_tokens.access).await.status(),
            StatusCode::UNAUTHORIZED,
            "{id}"
        );
        let _ = bob_tokens;
    }
}

#[tokio::test]
async fn bearer_failures_are_401_problems_with_www_authenticate() {
    let app = TestApp::spawn(&backends()[0]).await;
    let (_, tokens) = app.signed_up("ann@x.io").await;
    let mut tampered = tokens.access.clone();
    tampered.pop();
    tampered.push(if tokens.access.ends_with('A') {
        'B'
    } else {
        'A'
    });
    for header in [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer garbage".to_owned()),
        Some(format!("Basic {}", tokens.access)),
        Some(format!("Bearer {tampered}")),
    ] {
        let mut request = app.request(Method::GET, "/users/me");
        if let Some(h) = &header {
            request = request.header("authorization", h);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{header:?}"
        );
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_rejected() {
    let app = TestApp::spawn(&backends()[0]).await;
    let (_, tokens) = app.signed_up("ann@x.io").await;
    let other = TestApp::spawn_with(&backends()[0], |s| {
        s.jwt_secret = Some("a-completely-different-secret-of-40-bytes".into());
    })
    .await;
    assert_eq!(
        other.get_auth("/users/me", &tokens.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn hs256_serves_no_jwks() {
    let app = TestApp::spawn(&backends()[0]).await;
    assert_problem(
        app.get("/.well-known/jwks.json").await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
}

/// A PKCS#8 v1 Ed25519 private key in PEM, from a random seed.
fn ed25519_pem() -> String {
    use base64::Engine as _;
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend(rand::random::<[u8; 32]>());
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

/// What a relying service checks: Roster's issuer and audience, one algorithm.
fn roster_validation(alg: jsonwebtoken::Algorithm) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_audience(&["roster"]);
    validation.set_issuer(&["roster"]);
    validation
}

/// Verifies `token` as another service would, with the key the JWKS
/// publishes under its `kid`: returns that key and the claims.
async fn verify_with_jwks(
    app: &TestApp,
    token: &str,
    alg: jsonwebtoken::Algorithm,
) -> (jsonwebtoken::jwk::Jwk, Value) {
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, alg);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid is published")
        .clone();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let claims = jsonwebtoken::decode::<Value>(token, &key, &roster_validation(alg))
        .unwrap()
        .claims;
    (jwk, claims)
}

#[tokio::test]
async fn eddsa_tokens_verify_against_the_served_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("ed25519.pem");
    std::fs::write(&key_path, ed25519_pem()).unwrap();
    let app = TestApp::spawn_with(&backends()[0], |s| {
        s.jwt_private_key_file = Some(key_path.display().to_string());
    })
    .await;
    let (user, tokens) = app.signed_up("ann@x.io").await;

    let (_, claims) = verify_with_jwks(&app, &tokens.access, jsonwebtoken::Algorithm::EdDSA).await;
    assert_eq!(claims["sub"], user["id"]);
    for claim in ["sid", "role", "iat", "nbf", "exp", "iss", "aud", "jti"] {
        assert!(claims.get(claim).is_some(), "{claim}");
    }
    assert_eq!(
        app.get_auth("/users/me", &tokens.access).await.status(),
        StatusCode::OK
    );
}

/// A fresh 2048-bit RSA private key in PKCS#8 PEM.
fn rsa_pem() -> String {
    use aws_lc_rs::encoding::AsDer as _;
    use base64::Engine as _;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = key.as_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

#[tokio::test]
async fn rs256_tokens_verify_against_the_served_jwks_and_other_keys_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("rsa.pem");
    std::fs::write(&key_path, rsa_pem()).unwrap();
    let app = TestApp::spawn_with(&backends()[0], |s| {
        s.jwt_private_key_file = Some(key_path.display().to_string());
    })
    .await;
    let (user, tokens) = app.signed_up("ann@x.io").await;

    let (jwk, claims) =
        verify_with_jwks(&app, &tokens.access, jsonwebtoken::Algorithm::RS256).await;
    assert!(
        matches!(
            jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_)
        ),
        "an RSA key"
    );
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(
        app.get_auth("/users/me", &tokens.access).await.status(),
        StatusCode::OK
    );

    // A token with the same claims and kid, signed by another RSA key.
    let other_path = dir.path().join("other.pem");
    std::fs::write(&other_path, rsa_pem()).unwrap();
    let other_key =
        jsonwebtoken::EncodingKey::from_rsa_pem(std::fs::read(&other_path).unwrap().as_slice())
            .unwrap();
    let header = jsonwebtoken::decode_header(&tokens.access).unwrap();
    let forged = jsonwebtoken::encode(&header, &claims, &other_key).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    assert!(
        jsonwebtoken::decode::<Value>(&forged, &key, &roster_validation(header.alg)).is_err(),
        "the served key rejects it"
    );
    assert_problem(
        app.get_auth("/users/me", &forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn bootstrap_admin_can_log_in_as_admin() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let me = app.me(&admin.access).await;
        assert_eq!(
            (me["email"].as_str(), me["role"].as_str()),
            (Some(ADMIN_EMAIL), Some("admin"))
        );
    }
}

/// Keys roll over without logging anyone out: a new key signs, the previous
/// one still verifies (and stays in the JWKS), across instances on one
/// database while a client refreshes.
#[tokio::test]
async fn signing_keys_roll_over_across_instances_without_logging_anyone_out() {
    const OLD: &str = "the-old-signing-secret-the-old-signing-secret";
    const NEW: &str = "the-new-signing-secret-the-new-signing-secret";
    let backend = &backends()[0];
    let old = TestApp::spawn_with(backend, |s| s.jwt_secret = Some(OLD.into())).await;
    let (_, tokens) = old.signed_up("ann@x.io").await;
    let rolled = |s: &mut roster::cli::Settings| {
        s.jwt_secret = Some(NEW.into());
        s.jwt_previous_secrets = Some(OLD.into());
    };
    let new = old.sibling_with(rolled).await;
    // The old token works on the rolled instance, and refreshes there.
    assert_eq!(
        new.get_auth("/users/me", &tokens.access).await.status(),
        StatusCode::OK
    );
    let pair: Value = new
        .post_json("/auth/refresh", &json!({"refresh_token": tokens.refresh}))
        .await
        .json()
        .await
        .unwrap();
    let fresh = pair["access_token"].as_str().unwrap();
    assert_ne!(
        jsonwebtoken::decode_header(fresh).unwrap().kid,
        jsonwebtoken::decode_header(&tokens.access).unwrap().kid,
        "the new key signs"
    );
    assert_eq!(
        new.get_auth("/users/me", fresh).await.status(),
        StatusCode::OK
    );
    // The old instance restarted with the new configuration: both verify.
    let restarted = old.sibling_with(rolled).await;
    for token in [tokens.access.as_str(), fresh] {
        assert_eq!(
            restarted.get_auth("/users/me", token).await.status(),
            StatusCode::OK
        );
    }
    // Once the old key is dropped, its tokens stop working.
    let dropped = old.sibling_with(|s| s.jwt_secret = Some(NEW.into())).await;
    assert_eq!(
        dropped.get_auth("/users/me", &tokens.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        dropped.get_auth("/users/me", fresh).await.status(),
        StatusCode::OK
    );

    // With key files, the previous public key stays in the JWKS.
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = (dir.path().join("k1.pem"), dir.path().join("k2.pem"));
    std::fs::write(&k1, ed25519_pem()).unwrap();
    std::fs::write(&k2, ed25519_pem()).unwrap();
    let first = TestApp::spawn_with(backend, |s| {
        s.jwt_private_key_file = Some(k1.display().to_string());
    })
    .await;
    let (_, tokens) = first.signed_up("bo@x.io").await;
    let second = first
        .sibling_with(|s| {
            s.jwt_private_key_file = Some(k2.display().to_string());
            s.jwt_previous_key_files = Some(k1.display().to_string());
        })
        .await;
    let jwks: Value = second
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    let (_, claims) =
        verify_with_jwks(&second, &tokens.access, jsonwebtoken::Algorithm::EdDSA).await;
    assert!(claims["sub"].is_string());
    assert_eq!(
        second.get_auth("/users/me", &tokens.access).await.status(),
        StatusCode::OK
    );
}
