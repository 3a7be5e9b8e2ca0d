//! The audit log: every event from the flow that causes it, with its actor
//! and subject; no secret in any of them; paging, filters, own events,
//! rollback with the change, retention.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{PASSWORD, TestApp, Tokens, assert_problem, backends},
    mail::MailSink,
};

const NEW_PASSWORD: &str = "an audited new passphrase";
const RESET_PASSWORD: &str = "a passphrase set by a reset";

/// Every event `GET /audit` lists with `query`, newest first, walking the
/// cursors two at a time (so paging is exercised on every call).
async fn all_events(app: &TestApp, admin: &Tokens, query: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/audit?per_page=2{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let response = app.get_auth(&path, &admin.access).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let page: Value = response.json().await.unwrap();
        events.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return events,
        }
    }
}

fn find<'a>(events: &'a [Value], event: &str, pick: impl Fn(&Value) -> bool) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == event && pick(e))
        .unwrap_or_else(|| panic!("no {event} event in {events:#?}"))
}

#[tokio::test]
async fn every_flow_records_its_events_without_secrets() {
    for backend in backends() {
        let sink = MailSink::start().await;
        let app = crate::mail_flows::app_with(&backend, &sink, |_| {}).await;
        let admin = app.login_admin().await;
        let admin_id = app.me(&admin.access).await["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let registered = app
            .request(Method::POST, "/auth/register")
            .header("x-request-id", "audit-register")
            .header("user-agent", "audit-test/1.0")
            .json(&json!({"email": "ann@x.io", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), StatusCode::CREATED);
        let ann: Value = registered.json().await.unwrap();
        let ann_id = ann["id"].as_str().unwrap().to_owned();
        let verify = sink
            .next_to("ann@x.io")
            .await
            .token("/account/verify-email?token=");

        assert_eq!(
            app.try_login("ann@x.io", "not the password").await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.try_login("nobody@x.io", "not the password")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        let first = app.login("ann@x.io", PASSWORD).await;
        let second = app.login("ann@x.io", PASSWORD).await;
        let verified = app
            .post_json("/auth/email/verify", &json!({"token": verify}))
            .await;
        assert_eq!(verified.status(), StatusCode::NO_CONTENT);

        let patch = |token: String, id: String, body: Value| {
            let app = &app;
            async move {
                app.send_json_auth(Method::PATCH, &format!("/users/{id}"), &token, &body)
                    .await
            }
        };
        let renamed = patch(first.access.clone(), ann_id.clone(), json!({"name": "Ann"})).await;
        assert_eq!(renamed.status(), StatusCode::OK);
        let promoted = patch(
            admin.access.clone(),
            ann_id.clone(),
            json!({"role": "admin"}),
        )
        .await;
        assert_eq!(promoted.status(), StatusCode::OK);
        let demoted = patch(
            admin.access.clone(),
            ann_id.clone(),
            json!({"role": "user"}),
        )
        .await;
        assert_eq!(demoted.status(), StatusCode::OK);

        // A password change ends the other session.
        let changed = app
            .send_json_auth(
                Method::POST,
                "/auth/password",
                &first.access,
                &json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
            )
            .await;
        assert_eq!(changed.status(), StatusCode::NO_CONTENT);
        drop(second);

        // A reset by mail ends every session.
        sink.next_to("ann@x.io").await; // password-changed
        app.post_json("/auth/password/forgot", &json!({"email": "ann@x.io"}))
            .await;
        let reset = sink
            .next_to("ann@x.io")
            .await
            .token("/account/reset-password?token=");
        let done = app
            .post_json(
                "/auth/password/reset",
                &json!({"token": reset, "new_password": RESET_PASSWORD}),
            )
            .await;
        assert_eq!(done.status(), StatusCode::NO_CONTENT);
        sink.next_to("ann@x.io").await; // password-changed

        // An own email change, confirmed.
        let ann_tokens = app.login("ann@x.io", RESET_PASSWORD).await;
        let moved = patch(
            ann_tokens.access.clone(),
            ann_id.clone(),
            json!({"email": "ann@y.io", "current_password": RESET_PASSWORD}),
        )
        .await;
        assert_eq!(moved.status(), StatusCode::ACCEPTED);
        let confirm = sink
            .next_to("ann@y.io")
            .await
            .token("/account/confirm-email?token=");
        let confirmed = app
            .post_json("/auth/email/confirm", &json!({"token": confirm}))
            .await;
        assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);

        // Disabled (its session ends) and enabled again.
        let disabled = patch(
            admin.access.clone(),
            ann_id.clone(),
            json!({"status": "disabled"}),
        )
        .await;
        assert_eq!(disabled.status(), StatusCode::OK);
        assert_eq!(
            app.try_login("ann@y.io", RESET_PASSWORD).await.status(),
            StatusCode::FORBIDDEN
        );
        let enabled = patch(
            admin.access.clone(),
            ann_id.clone(),
            json!({"status": "active"}),
        )
        .await;
        assert_eq!(enabled.status(), StatusCode::OK);

        // Logout, logout everywhere, an admin ending the sessions.
        let a = app.login("ann@y.io", RESET_PASSWORD).await;
        let out = app
            .send_json_auth(Method::POST, "/auth/logout", &a.access, &json!({}))
            .await;
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        let b = app.login("ann@y.io", RESET_PASSWORD).await;
        let all = app
            .send_auth(Method::POST, "/auth/logout-all", &b.access)
            .await;
        assert_eq!(all.status(), StatusCode::NO_CONTENT);
        app.login("ann@y.io", RESET_PASSWORD).await;
        let ended = app
            .send_auth(
                Method::DELETE,
                &format!("/users/{ann_id}/sessions"),
                &admin.access,
            )
            .await;
        assert_eq!(ended.status(), StatusCode::NO_CONTENT);

        // A refresh token used again after the grace period.
        let c = app.login("ann@y.io", RESET_PASSWORD).await;
        let rotated = app
            .post_json("/auth/refresh", &json!({"refresh_token": c.refresh}))
            .await;
        assert_eq!(rotated.status(), StatusCode::OK);
        let rotated: Value = rotated.json().await.unwrap();
        app.sql("UPDATE refresh_tokens SET rotated_at = '2020-01-01T00:00:00+00:00' WHERE rotated_at IS NOT NULL")
            .await;
        let reused = app
            .post_json("/auth/refresh", &json!({"refresh_token": c.refresh}))
            .await;
        assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);

        // Created, invited, deleted.
        let created = app
            .send_json_auth(
                Method::POST,
                "/users",
                &admin.access,
                &json!({"email": "bo@x.io", "password": PASSWORD}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let bo_id = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let invited = app
            .send_json_auth(
                Method::POST,
                "/users",
                &admin.access,
                &json!({"email": "cy@x.io"}),
            )
            .await;
        assert_eq!(invited.status(), StatusCode::CREATED);
        let deleted = app
            .send_auth(Method::DELETE, &format!("/users/{ann_id}"), &admin.access)
            .await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

        let events = all_events(&app, &admin, "").await;
        let ann_is = |e: &Value| e["subject_id"] == ann_id.as_str();
        let by_ann = |e: &Value| ann_is(e) && e["actor_id"] == ann_id.as_str();
        let by_admin = |e: &Value| ann_is(e) && e["actor_id"] == admin_id.as_str();
        let how = |how: &'static str| move |e: &Value| e["details"]["how"] == how;

        let reg = find(&events, "user.registered", ann_is);
        assert_eq!(reg["actor_id"], Value::Null);
        assert_eq!(reg["request_id"], "audit-register");
        assert_eq!(reg["user_agent"], "audit-test/1.0");
        assert_eq!(reg["ip"], "127.0.0.1");
        let failed = find(&events, "login.failed", |e| {
            ann_is(e) && e["details"]["reason"] == "password"
        });
        assert_eq!(failed["details"], json!({"reason": "password"}));
        find(&events, "login.failed", |e| e["subject_id"].is_null());
        find(&events, "login.failed", |e| {
            ann_is(e) && e["details"]["reason"] == "disabled"
        });
        find(&events, "login.succeeded", by_ann);
        find(&events, "login.succeeded", |e| {
            e["subject_id"] == admin_id.as_str()
        });
        find(&events, "email.verified", by_ann);
        let renamed = find(&events, "user.updated", |e| {
            by_ann(e) && e["details"]["fields"] == json!(["name"])
        });
        assert!(renamed["details"].get("role").is_none(), "{renamed}");
        find(&events, "user.updated", |e| {
            by_admin(e) && e["details"]["role"] == json!({"from": "user", "to": "admin"})
        });
        find(&events, "user.updated", |e| {
            by_admin(e) && e["details"]["role"] == json!({"from": "admin", "to": "user"})
        });
        find(&events, "password.changed", by_ann);
        find(&events, "session.ended", |e| {
            by_ann(e) && how("password_change")(e)
        });
        let requested = find(&events, "password.reset_requested", ann_is);
        assert_eq!(requested["actor_id"], Value::Null);
        find(&events, "password.reset", |e| {
            by_ann(e) && e["details"]["via"] == "reset"
        });
        find(&events, "session.ended", |e| {
            by_ann(e) && how("password_reset")(e)
        });
        find(&events, "email.change_requested", by_ann);
        find(&events, "email.changed", by_ann);
        find(&events, "user.disabled", by_admin);
        find(&events, "session.ended", |e| {
            by_admin(e) && how("disabled")(e)
        });
        find(&events, "user.enabled", by_admin);
        find(&events, "session.ended", |e| by_ann(e) && how("logout")(e));
        find(&events, "session.ended", |e| {
            by_ann(e) && how("logout_all")(e)
        });
        find(&events, "session.ended", |e| by_admin(e) && how("admin")(e));
        find(&events, "refresh.reuse_detected", ann_is);
        find(&events, "user.created", |e| {
            e["subject_id"] == bo_id.as_str() && e["actor_id"] == admin_id.as_str()
        });
        find(&events, "user.invited", |e| {
            e["actor_id"] == admin_id.as_str()
        });
        // The deleted user's events stay, with its id and nothing else of it.
        find(&events, "user.deleted", by_admin);
        let text = serde_json::to_string(&events).unwrap();
        assert!(!text.contains("ann@"), "no address is copied into events");

        // Newest first.
        let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
        let mut sorted = times.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(times, sorted);

        // No secret anywhere in the log.
        let secrets = [
            PASSWORD,
            NEW_PASSWORD,
            RESET_PASSWORD,
            verify.as_str(),
            reset.as_str(),
            confirm.as_str(),
            first.access.as_str(),
            first.refresh.as_str(),
            c.refresh.as_str(),
            rotated["refresh_token"].as_str().unwrap(),
            admin.access.as_str(),
            "$2b$",
            "sha256-bcrypt",
        ];
        for secret in secrets {
            assert!(!text.contains(secret), "a secret is in the audit log");
        }

        // Counted by event.
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("roster_audit_events_total{event=\"user.registered\"} 1")),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn the_log_filters_pages_and_shows_users_only_their_own_events() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let (ann, ann_tokens) = app.signed_up("ann@x.io").await;
        let ann_id = ann["id"].as_str().unwrap();
        let (bo, _) = app.signed_up("bo@x.io").await;
        let bo_id = bo["id"].as_str().unwrap();
        for _ in 0..3 {
            app.try_login("ann@x.io", "wrong password").await;
        }

        // Paging two at a time gives what one page of 100 gives.
        let everything: Value = app
            .get_auth("/audit?per_page=100", &admin.access)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(everything["next_cursor"], Value::Null);
        let paged = all_events(&app, &admin, "").await;
        assert_eq!(&paged, everything["items"].as_array().unwrap());

        let failed = all_events(&app, &admin, "&event=login.failed").await;
        assert_eq!(failed.len(), 3);
        let two_kinds = all_events(&app, &admin, "&event=login.failed&event=user.registered").await;
        assert_eq!(two_kinds.len(), 5);
        let anns = all_events(&app, &admin, &format!("&user={ann_id}")).await;
        assert!(
            anns.iter()
                .all(|e| e["subject_id"] == ann_id || e["actor_id"] == ann_id)
        );
        assert!(anns.iter().all(|e| e["subject_id"] != bo_id));
        assert_eq!(
            anns.len(),
            5,
            "registered, logged in, three failures: {anns:#?}"
        );
        let newest = failed[0]["at"].as_str().unwrap();
        let before = all_events(
            &app,
            &admin,
            &format!("&event=login.failed&before={newest}"),
        )
        .await;
        assert!(before.len() < 3);
        let after = all_events(&app, &admin, &format!("&event=login.failed&after={newest}")).await;
        assert!(after.is_empty());

        // Only the caller's own events, whatever it asks.
        let own: Value = app
            .get_auth(&format!("/auth/audit?user={bo_id}"), &ann_tokens.access)
            .await
            .json()
            .await
            .unwrap();
        let own = own["items"].as_array().unwrap();
        assert_eq!(own.len(), 5);
        assert!(own.iter().all(|e| e["subject_id"] == ann_id));

        // Non-admins and anonymous callers.
        let forbidden = app.get_auth("/audit", &ann_tokens.access).await;
        assert_problem(forbidden, StatusCode::FORBIDDEN, "forbidden").await;
        let anonymous = app.get("/auth/audit").await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

        // Bad filters: one 422 naming each.
        for (query, field) in [
            ("user=not-a-uuid", "user"),
            ("event=user.exploded", "event"),
            ("after=yesterday", "after"),
            ("before=2026-13-01T00:00:00Z", "before"),
            ("cursor=garbage", "cursor"),
            ("per_page=0", "per_page"),
            ("per_page=101", "per_page"),
        ] {
            let response = app
                .get_auth(&format!("/audit?{query}"), &admin.access)
                .await;
            let problem =
                assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
            assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
        }
        let response = app
            .get_auth("/auth/audit?event=nope", &ann_tokens.access)
            .await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    }
}

#[tokio::test]
async fn a_change_whose_audit_insert_fails_is_rolled_back() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let (ann, tokens) = app.signed_up("ann@x.io").await;
        let id = ann["id"].as_str().unwrap();
        app.sql("DROP TABLE audit_events").await;
        let renamed = app
            .send_json_auth(
                Method::PATCH,
                &format!("/users/{id}"),
                &tokens.access,
                &json!({"name": "Never"}),
            )
            .await;
        assert!(renamed.status().is_server_error(), "{}", renamed.status());
        let disabled = app
            .send_json_auth(
                Method::PATCH,
                &format!("/users/{id}"),
                &admin.access,
                &json!({"status": "disabled"}),
            )
            .await;
        assert!(disabled.status().is_server_error());
        let me = app.me(&tokens.access).await;
        assert_eq!(me["name"], Value::Null, "the change went with its record");
        assert_eq!(me["status"], "active");
        let registered = app
            .post_json(
                "/auth/register",
                &json!({"email": "bo@x.io", "password": PASSWORD}),
            )
            .await;
        assert!(registered.status().is_server_error());
        assert_eq!(
            app.try_login("bo@x.io", PASSWORD).await.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "the failed login's own record cannot be written either"
        );
    }
}

#[tokio::test]
async fn old_events_are_pruned_and_new_ones_stay() {
    for backend in backends() {
        let app = TestApp::spawn_configured(
            &backend,
            |s| s.audit_retention_days = "30".into(),
            |c| c.audit.prune_interval = Duration::from_millis(100),
        )
        .await;
        let admin = app.login_admin().await;
        app.signed_up("ann@x.io").await;
        for _ in 0..3 {
            app.try_login("ann@x.io", "wrong password").await;
        }
        // The failures are made 31 days old; the rest is new.
        app.sql(
            "UPDATE audit_events SET at = '2020-01-01T00:00:00+00:00' WHERE event = 'login.failed'",
        )
        .await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let events = all_events(&app, &admin, "").await;
            if events.iter().all(|e| e["event"] != "login.failed") {
                assert!(events.iter().any(|e| e["event"] == "user.registered"));
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never pruned");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
