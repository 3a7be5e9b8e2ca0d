//! The account's status, its verified address and its last login: what an
//! admin can change, and what a disabled account can no longer do.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, assert_problem, backends};

async fn patch(app: &TestApp, token: &str, id: &str, body: &Value) -> reqwest::Response {
    app.send_json_auth(Method::PATCH, &format!("/users/{id}"), token, body)
        .await
}

#[tokio::test]
async fn new_accounts_are_active_and_only_operators_and_admins_vouch_for_addresses() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let (ann, _) = app.signed_up("ann@x.io").await;
        assert_eq!(
            (
                &ann["status"],
                &ann["email_verified"],
                &ann["last_login_at"]
            ),
            (&json!("active"), &json!(false), &Value::Null)
        );
        let admin = app.login_admin().await;
        let me = app.me(&admin.access).await;
        assert_eq!(me["email_verified"], true, "the operator's admin: {me}");
        assert!(me["last_login_at"].is_string(), "set by the login: {me}");
        let created: Value = app
            .send_json_auth(
                Method::POST,
                "/users",
                &admin.access,
                &json!({"email": "bob@x.io", "password": "a long passphrase", "email_verified": true}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(created["email_verified"], true, "{created}");
    }
}

#[tokio::test]
async fn disabling_ends_every_session_and_refuses_the_right_password() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let (ann, first) = app.signed_up("ann@x.io").await;
        let second = app.login("ann@x.io", PASSWORD).await;
        let id = ann["id"].as_str().unwrap();

        let disabled = patch(&app, &admin.access, id, &json!({"status": "disabled"})).await;
        assert_eq!(disabled.status(), StatusCode::OK);
        let disabled: Value = disabled.json().await.unwrap();
        assert_eq!(disabled["status"], "disabled");

        // Every session ended at once: access and refresh tokens alike.
        for tokens in [&first, &second] {
            assert_problem(
                app.get_auth("/users/me", &tokens.access).await,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            )
            .await;
            let refreshed = app
                .post_json("/auth/refresh", &json!({"refresh_token": tokens.refresh}))
                .await;
            assert_problem(refreshed, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
        // The right password learns that the account is disabled; a wrong one does not.
        let right = app.try_login("ann@x.io", PASSWORD).await;
        assert_problem(right, StatusCode::FORBIDDEN, "account-disabled").await;
        let wrong = app.try_login("ann@x.io", "not the password").await;
        assert_problem(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;

        // Enabled again, the account logs in.
        let enabled = patch(&app, &admin.access, id, &json!({"status": "active"})).await;
        assert_eq!(enabled.status(), StatusCode::OK);
        assert_eq!(
            app.try_login("ann@x.io", PASSWORD).await.status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_disabled_and_a_disabled_admin_does_not_count() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let admin_id = app.me(&admin.access).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let last = patch(
            &app,
            &admin.access,
            &admin_id,
            &json!({"status": "disabled"}),
        )
        .await;
        assert_problem(last, StatusCode::CONFLICT, "conflict").await;

        // A second admin, disabled: the first is still the last active one.
        let other: Value = app
            .send_json_auth(
                Method::POST,
                "/users",
                &admin.access,
                &json!({"email": "eve@x.io", "password": "a long passphrase", "role": "admin"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let other_id = other["id"].as_str().unwrap();
        let off = patch(
            &app,
            &admin.access,
            other_id,
            &json!({"status": "disabled"}),
        )
        .await;
        assert_eq!(off.status(), StatusCode::OK);
        for body in [json!({"status": "disabled"}), json!({"role": "user"})] {
            let response = patch(&app, &admin.access, &admin_id, &body).await;
            assert_problem(response, StatusCode::CONFLICT, "conflict").await;
        }
        let deleted = app
            .send_auth(Method::DELETE, &format!("/users/{admin_id}"), &admin.access)
            .await;
        assert_problem(deleted, StatusCode::CONFLICT, "conflict").await;
        // The disabled admin itself may go.
        let gone = app
            .send_auth(Method::DELETE, &format!("/users/{other_id}"), &admin.access)
            .await;
        assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn status_and_verification_are_admin_fields_and_invited_cannot_be_set() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let (ann, tokens) = app.signed_up("ann@x.io").await;
        let id = ann["id"].as_str().unwrap();
        for body in [
            json!({"status": "disabled"}),
            json!({"email_verified": true}),
        ] {
            let response = patch(&app, &tokens.access, id, &body).await;
            assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
        }
        let invited = patch(&app, &admin.access, id, &json!({"status": "invited"})).await;
        let problem = assert_problem(invited, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert_eq!(problem["errors"][0]["field"], "status");
        for body in [json!({"status": "gone"}), json!({"email_verified": "yes"})] {
            let response = patch(&app, &admin.access, id, &body).await;
            assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        }
        let verified = patch(&app, &admin.access, id, &json!({"email_verified": true})).await;
        let verified: Value = verified.json().await.unwrap();
        assert_eq!(verified["email_verified"], true);
    }
}

#[tokio::test]
async fn a_new_email_is_unverified_and_the_same_one_keeps_its_state() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let (ann, _) = app.signed_up("ann@x.io").await;
        let id = ann["id"].as_str().unwrap();
        let path = format!("/users/{id}");
        patch(&app, &admin.access, id, &json!({"email_verified": true})).await;
        // A full replacement with the same address keeps it verified.
        let same: Value = app
            .send_json_auth(
                Method::PUT,
                &path,
                &admin.access,
                &json!({"email": "ann@x.io"}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(same["email_verified"], true, "{same}");
        let moved: Value = patch(&app, &admin.access, id, &json!({"email": "ann2@x.io"}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(moved["email_verified"], false, "{moved}");
        let vouched: Value = patch(
            &app,
            &admin.access,
            id,
            &json!({"email": "ann3@x.io", "email_verified": true}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(vouched["email_verified"], true, "{vouched}");
    }
}

#[tokio::test]
async fn the_listing_filters_by_status_and_verification() {
    for backend in backends() {
        let app = TestApp::spawn(&backend).await;
        let admin = app.login_admin().await;
        let (ann, _) = app.signed_up("ann@x.io").await;
        app.signed_up("bob@x.io").await;
        let ann_id = ann["id"].as_str().unwrap();
        patch(&app, &admin.access, ann_id, &json!({"status": "disabled"})).await;
        let emails = |page: &Value| -> Vec<String> {
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_owned())
                .collect()
        };
        let list = |query: &'static str| {
            let app = &app;
            let token = admin.access.clone();
            async move {
                let page: Value = app
                    .get_auth(&format!("/users?{query}"), &token)
                    .await
                    .json()
                    .await
                    .unwrap();
                page
            }
        };
        let disabled = list("status=disabled").await;
        assert_eq!(emails(&disabled), ["ann@x.io"]);
        assert_eq!(disabled["total"], 1);
        let active = list("status=active&sort=email").await;
        assert_eq!(emails(&active), [ADMIN_EMAIL, "bob@x.io"]);
        let verified = list("email_verified=true").await;
        assert_eq!(emails(&verified), [ADMIN_EMAIL]);
        let unverified = list("email_verified=false&sort=email").await;
        assert_eq!(emails(&unverified), ["ann@x.io", "bob@x.io"]);
        let bad = app.get_auth("/users?status=gone", &admin.access).await;
        assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        let bad = app
            .get_auth("/users?email_verified=maybe", &admin.access)
            .await;
        assert_problem(bad, StatusCode::BAD_REQUEST, "bad-request").await;
    }
}
